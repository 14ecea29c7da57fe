#!/usr/bin/python3
"""Writes the checked-in seed corpora of tests/fuzz/corpus/<target>/ from the existing tests.

Byte strings mirror tests/proxy/wire/*_test.cpp, statements come from tests/rewriter/cases/*.test,
configurations from config/seedproxy.example.json and config_test.cpp's mistakes, commands from
docs/admin.md. Each target reads a few control bytes before its payload (see its _fuzz.cpp); the
helpers below put them in front. Run it after changing a target's input layout; it replaces the
corpus directories wholesale (regressions/ and crashes/ are never touched).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
V30 = 3 << 16
V32 = (3 << 16) | 2


def u32(value: int) -> bytes:
    return struct.pack(">I", value & 0xFFFFFFFF)


def message(kind: str, body: bytes | str) -> bytes:
    if isinstance(body, str):
        body = body.encode()
    return kind.encode() + u32(len(body) + 4) + body


def startup_packet(pairs: list[tuple[str, str]] | bytes, version: int = V30) -> bytes:
    if isinstance(pairs, bytes):
        body = pairs
    else:
        body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in pairs) + b"\0"
    return u32(8 + len(body)) + u32(version) + body


def request(code: int, length: int = 8) -> bytes:
    return u32(length) + u32(code) + bytes(max(0, length - 8))


def cancel(pid: int, key: bytes) -> bytes:
    return u32(12 + len(key)) + u32(CANCEL_REQUEST) + u32(pid) + key


def query(sql: str) -> bytes:
    return message("Q", sql.encode() + b"\0")


# A typical result stream from the server, and a client's extended-protocol pipeline.
SERVER_RESULT = (
    message("K", b"\x00\x00\x10\x92" + b"\x01" * 4)
    + message("T", b"\x00\x01risk_score\0" + b"\0" * 6 + b"\x06\xa4\xff\xff\x00\x08\x00\x02\x00\x00")
    + message("D", b"\x00\x01\x00\x00\x00\x0412.5")
    + message("D", b"\x00\x01\xff\xff\xff\xff")
    + message("C", "SELECT 2\0")
    + message("Z", "I")
)
PIPELINE = (
    message("P", b"s1\0SELECT risk_score FROM account WHERE id = $1\0\x00\x01\x00\x00\x00\x17")
    + message("B", b"\0s1\0\x00\x00\x00\x01\x00\x00\x00\x0142\x00\x00")
    + message("D", b"P\0")
    + message("E", b"\0\x00\x00\x00\x00")
    + message("S", b"")
)
BAD_LENGTH = b"Q" + u32(2)
STARTUP_ALICE = startup_packet([("user", "alice"), ("database", "bank"), ("application_name", "psql")])


def frame_codec(flags: int, stream: bytes, cut: int = 0, chunk: int = 0) -> bytes:
    """flags bit 0: startup phase; bits 1-2: 0 = 64 KiB limit, 1 = 1 GiB, 2 = 4 + (flags >> 3)."""
    return bytes([flags]) + struct.pack(">H", cut) + bytes([chunk]) + stream


def relay(limits: int, mask: int, extra: str, stream: bytes, cut: int = 0, chunk: int = 0) -> bytes:
    """limits bits 0-1 as frame_codec's; mask over "QPZKESXd"; extra: one more inspected type."""
    return bytes([limits, mask, ord(extra) if extra else 0]) + struct.pack(">H", cut) + bytes([chunk]) + stream


def startup_input(raw: bytes) -> bytes:
    return b"\x00" + raw


def startup_body(body: bytes, code_index: int = 0) -> bytes:
    """The target makes the header: code_index 0 = 3.0, 1 = 3.2, 2 = CancelRequest, 3 = 3.65535."""
    return bytes([1 | (code_index << 1)]) + body


def frame_codec_corpus() -> dict[str, bytes]:
    return {
        "ssl_startup_query_terminate": frame_codec(
            0b011, request(SSL_REQUEST) + STARTUP_ALICE + query("SELECT 1") + message("X", b""), 9, 1
        ),
        "gss_ssl_startup32_pipeline": frame_codec(
            0b011, request(GSSENC_REQUEST) + request(SSL_REQUEST) + startup_packet([("user", "bob")], V32) + PIPELINE, 30, 3
        ),
        "cancel_30": frame_codec(0b011, cancel(4242, b"\x01\x02\x03\x04"), 5, 2),
        "cancel_32_long_key": frame_codec(0b011, cancel(4242, bytes(range(32))), 13, 7),
        "startup_length_7": frame_codec(0b001, u32(7) + u32(V30)),
        "startup_length_10001": frame_codec(0b001, u32(10001) + u32(V30) + b"user\0"),
        "protocol_2": frame_codec(0b011, startup_packet([("user", "x")], 2 << 16)),
        "ssl_length_12": frame_codec(0b011, request(SSL_REQUEST, 12)),
        "cancel_length_15": frame_codec(0b011, u32(15) + u32(CANCEL_REQUEST) + u32(1) + b"abc"),
        "typed_query": frame_codec(0b010, query("SELECT risk_score FROM account"), 3, 1),
        "typed_two_in_one": frame_codec(0b010, query("SELECT 1") + query("SELECT 2"), 14, 5),
        "typed_length_3": frame_codec(0b010, query("SELECT 1") + b"Q" + u32(3)),
        "typed_over_64k": frame_codec(0b000, b"p" + u32(65537) + b"x" * 16),
        "typed_partial": frame_codec(0b010, query("SELECT 1")[:-3], 2, 1),
        "server_result": frame_codec(0b010, SERVER_RESULT, 40, 6),
        "sync_empty_body": frame_codec(0b010, message("S", b"") * 3, 6, 1),
        "small_limit": frame_codec(0b1000100, message("d", b"abc") + message("d", b"x" * 20), 8, 2),
        "startup_then_bad_length": frame_codec(0b011, STARTUP_ALICE + BAD_LENGTH, 60, 4),
    }


def relay_scanner_corpus() -> dict[str, bytes]:
    zk = 0b00001100  # Z and K, as the server-side pump inspects
    qp = 0b00000011  # Q and P, as the client-side pump inspects
    big_copy = message("d", b"c" * 900) + message("c", b"") + message("C", "COPY 1\0") + message("Z", "I")
    return {
        "server_result_zk": relay(1, zk, "", SERVER_RESULT, 17, 3),
        "server_result_all": relay(1, 0xFF, "T", SERVER_RESULT, 33, 1),
        "pipeline_qp": relay(1, qp, "", PIPELINE, 20, 5),
        "pipeline_nothing_inspected": relay(1, 0, "", PIPELINE, 9, 2),
        "queries_64k": relay(0, qp, "", query("SELECT 1") + query("SELECT risk_score FROM account"), 11, 4),
        "bad_length_between": relay(0, qp, "", query("SELECT 1") + BAD_LENGTH + query("SELECT 1"), 12, 1),
        "oversized_streamed": relay(0, zk, "", b"p" + u32(65537) + b"x" * 8, 3, 2),
        "oversized_inspected": relay(0, qp, "", b"Q" + u32(70000) + b"SELECT", 4, 3),
        "copy_streamed": relay(1, zk, "", big_copy, 500, 64),
        "error_partial": relay(1, 0b00010000, "", message("E", "SFATAL\0C08P01\0Mbad\0\0")[:9], 7, 1),
        "small_limit": relay(2 | (6 << 2), qp, "", message("S", b"") + message("Q", b"abcdefghij"), 3, 1),
        "extra_type": relay(1, 0, "D", SERVER_RESULT, 25, 8),
        "max_u32_limit": relay(3, zk, "", b"D" + u32(0xFFFFFFFF) + b"y" * 10, 2, 2),
        "terminate": relay(1, 0b01000000, "", query("SELECT 1") + message("X", b""), 5, 1),
    }


def startup_corpus() -> dict[str, bytes]:
    options = r"-c search_path=ledger,public --application-name=app -c\ statement_timeout=5 -cwork_mem=64MB"
    return {
        "alice_bank_psql": startup_input(STARTUP_ALICE),
        "bob_32": startup_input(startup_packet([("user", "bob"), ("database", "bank")], V32)),
        "user_only": startup_input(startup_packet([("user", "carol")])),
        "options_settings": startup_input(
            startup_packet([("user", "dave"), ("options", options), ("search_path", "public")])
        ),
        "options_escaped": startup_input(startup_packet([("user", "e"), ("options", r"-c search_path=a\ b\\c")])),
        "repeated_parameters": startup_input(
            startup_packet([("user", "a"), ("user", "b"), ("database", ""), ("replication", "database")])
        ),
        "no_parameters": startup_input(startup_packet(b"\0")),
        "missing_terminator": startup_input(startup_packet(b"user\0alice")),
        "value_missing": startup_input(startup_packet(b"user\0")),
        "extra_terminators": startup_input(startup_packet(b"user\0alice\0\0\0")),
        "empty_name_first": startup_input(startup_packet(b"\0user\0alice\0\0")),
        "empty_body": startup_input(startup_packet(b"")),
        "cancel_30": startup_input(cancel(4242, b"\x01\x02\x03\x04")),
        "cancel_256": startup_input(cancel(7, bytes(range(256)))),
        "ssl_request": startup_input(request(SSL_REQUEST)),
        "body_user_db": startup_body(b"user\0alice\0database\0bank\0\0"),
        "body_options": startup_body(b"user\0x\0options\0--search_path=s -c DateStyle=ISO\0\0", 1),
        "body_cancel": startup_body(u32(99) + b"keyk", 2),
        "body_unknown_minor": startup_body(b"user\0x\0\0", 3),
    }


def rewriter_corpus() -> dict[str, bytes]:
    cases: list[str] = []
    for path in sorted((ROOT / "tests" / "rewriter" / "cases").glob("*.test")):
        sqls = []
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "query":
                sql = []
                i += 1
                while i < len(lines) and lines[i] != "----":
                    sql.append(lines[i])
                    i += 1
                sqls.append("\n".join(sql).rstrip("\n"))
            i += 1
        small = [s for s in sqls if len(s) <= 600]
        if small:
            cases.append(small[0])
            longest = max(small, key=len)
            if longest != small[0]:
                cases.append(longest)
    cases += [
        # The fuzz target's own seeds, in each phase, and spellings the case files rarely use.
        'SELECT c."Score", "Client"."Full Name" FROM "Client" c',
        "SELECT cents FROM txn UNION ALL SELECT txn_count FROM account",
        "SELECT label, tier, old_score FROM branch, account",
        "INSERT INTO branch (id, name, city, label) VALUES (1, 'x', 'y', 'z') RETURNING label",
        "SELECT $$risk_score$$, U&\"risk\\005fscore\" FROM account /* risk_score */ -- account",
        "SELECT risk_score FROM ledger.account",
    ]
    return {f"case_{i:02d}": sql.encode() for i, sql in enumerate(cases)}


def config_corpus() -> dict[str, bytes]:
    example = (ROOT / "config" / "seedproxy.example.json").read_text()
    full = {
        "instance": "proxy-1",
        "listen": {"host": "0.0.0.0", "port": 6432},
        "upstream": {"host": "db", "port": 5432},
        "control": {"user": "seedproxy", "password": "secret"},
        "admin": {"users": ["postgres", "ops"], "auth_database": "postgres"},
        "reload": {"watch_file": False},
        "materialization": {
            "enabled": True, "lock_timeout_seconds": 0.05, "target_batch_seconds": 0.1,
            "initial_batch_rows": 1000, "min_batch_rows": 10, "max_batch_rows": 100000,
            "pause_ratio": 0.5, "phase_grace_seconds": 0, "progress_log_seconds": 10,
            "reads_flush_seconds": 5, "check_seconds": 0.5,
        },
        "seeds": [{
            "database": "bank", "entity": "\"Ledger\".\"Account\"", "attribute": "score",
            "type": "int", "expression": "1", "materialize": {"policy": "never"},
        }],
        "log": {"level": "debug", "format": "json"},
    }
    return {
        "example": example.encode(),
        "full": json.dumps(full, indent=1).encode(),
        "empty_object": b"{}",
        "empty_text": b"  \n",
        "bom": b"\xef\xbb\xbf{\"listen\": {\"port\": 7000}}",
        "not_object": b"[1, 2]",
        "syntax_error": b"{\"listen\": {\"port\": 6432,}}",
        "duplicate_key": b"{\"listen\": {}, \"listen\": {}}",
        "unknown_key_typo": b"{\"upstreem\": {\"port\": 5432}}",
        "port_out_of_range": b"{\"listen\": {\"port\": 70000}}",
        "port_float": b"{\"upstream\": {\"port\": 5432.0}}",
        "self_upstream": b"{\"listen\": {\"host\": \"h\", \"port\": 1}, \"upstream\": {\"host\": \"h\", \"port\": 1}}",
        "metrics_no_port": b"{\"metrics\": {\"host\": \"127.0.0.1\"}}",
        "nul_in_string": b"{\"control\": {\"user\": \"a\\u0000b\"}}",
        "bad_utf8": b"{\"instance\": \"\xc3\x28\"}",
        "admin_duplicate_user": b"{\"admin\": {\"users\": [\"a\", \"a\"]}}",
        "seed_missing_type": b"{\"seeds\": [{\"database\": \"d\", \"entity\": \"t\", \"attribute\": \"a\", \"expression\": \"1\"}]}",
        "seed_bad_entity": b"{\"seeds\": [{\"database\": \"d\", \"entity\": \"a.b.c\", \"attribute\": \"x\", \"type\": \"int\", \"expression\": \"1\"}]}",
        "seed_duplicate": b"{\"seeds\": [" + b",".join([b"{\"database\": \"d\", \"entity\": \"T\", \"attribute\": \"X\", \"type\": \"int\", \"expression\": \"1\"}", b"{\"database\": \"d\", \"entity\": \"public.t\", \"attribute\": \"x\", \"type\": \"int\", \"expression\": \"2\"}"]) + b"]}",
        "policy_typo": b"{\"seeds\": [{\"database\": \"d\", \"entity\": \"t\", \"attribute\": \"a\", \"type\": \"int\", \"expression\": \"1\", \"materialize\": {\"policy\": \"manuel\"}}]}",
        "batch_rows_order": b"{\"materialization\": {\"min_batch_rows\": 500, \"max_batch_rows\": 100}}",
        "pause_ratio_string": b"{\"materialization\": {\"pause_ratio\": \"1\"}}",
        "seconds_huge": b"{\"limits\": {\"startup_timeout_seconds\": 1e400}}",
        "limits": b"{\"limits\": {\"max_message_bytes\": 1024, \"max_clients\": 1, \"connect_timeout_seconds\": 0.001}, \"runtime\": {\"threads\": 256, \"shutdown_grace_seconds\": 0}}",
        "log_level_typo": b"{\"log\": {\"level\": \"warn\"}}",
        "deep_nesting": b"{\"admin\": " + b"[" * 200 + b"]" * 200 + b"}",
    }


def admin_commands_corpus() -> dict[str, bytes]:
    commands = [
        "SHOW SEEDS;",
        "show materializations",
        "SHOW CLIENTS; SHOW STATS;",
        "Show Config",
        "RELOAD",
        "PAUSE",
        "PAUSE public.account.risk_score",
        "RESUME account.risk_score;",
        "MATERIALIZE account.risk_score",
        "ROLLBACK \"Account\".risk_score",
        "-- a comment\nSHOW SEEDS /* inline */ ;",
        "MATERIALIZE 'a;b'; ROLLBACK \"x;\"\"y\"",
        "SHOW",
        "SHOW NOPE",
        "SELECT 1",
        "RELOAD now",
        ";;; ;",
        "materialize",
        "SHOW SEEDS EXTRA",
        "/* unterminated",
        "'unterminated; SHOW SEEDS",
        "SHOW\tSEEDS\r\n;\fRELOAD",
    ]
    return {f"command_{i:02d}": c.encode() for i, c in enumerate(commands)}


def main() -> None:
    corpora = {
        "frame_codec": frame_codec_corpus(),
        "relay_scanner": relay_scanner_corpus(),
        "startup": startup_corpus(),
        "rewriter": rewriter_corpus(),
        "config": config_corpus(),
        "admin_commands": admin_commands_corpus(),
    }
    for target, files in corpora.items():
        directory = CORPUS / target
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        size = sum(len(d) for d in files.values())
        print(f"{target}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
