"""A tiny raw PostgreSQL v3 protocol client for byte-level end-to-end tests.

Builders return bytes ready to send; WireClient owns one socket and reads whole backend
messages as (type, body) pairs, where type is a one-character str and body excludes the
type byte and the length word. Authentication supports trust, cleartext, md5 and
SCRAM-SHA-256 (no channel binding), enough to observe PostgreSQL's own auth errors.

    c = WireClient(port)
    c.startup(user="postgres", database="postgres")
    msgs = c.authenticate()            # through ReadyForQuery; raises ServerError on 'E'
    c.send(query("select 1"))
    msgs = c.read_until("Z")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTOCOL_3_0 = 196608
PROTOCOL_3_2 = 196610
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102

FORMAT_TEXT = 0
FORMAT_BINARY = 1


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF or reset) before a whole message arrived."""


class ServerError(Exception):
    """An ErrorResponse arrived where success was expected."""

    def __init__(self, fields: dict):
        super().__init__(f"{fields.get('S', '?')} {fields.get('C', '?')}: {fields.get('M', '')}")
        self.fields = fields
        self.sqlstate = fields.get("C")


# -- frontend packet builders --------------------------------------------------------------
def _cstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return b + b"\0"


def message(type_: bytes | str, body: bytes = b"") -> bytes:
    t = type_.encode() if isinstance(type_, str) else type_
    return t + struct.pack("!I", len(body) + 4) + body


def startup_packet(params: dict | None = None, version: int = PROTOCOL_3_0, **kw) -> bytes:
    p = dict(params or {})
    p.update(kw)
    body = struct.pack("!I", version)
    for k, v in p.items():
        body += _cstr(k) + _cstr(v)
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def ssl_request() -> bytes:
    return struct.pack("!II", 8, SSL_REQUEST_CODE)


def gssenc_request() -> bytes:
    return struct.pack("!II", 8, GSSENC_REQUEST_CODE)


def cancel_request(pid: int, secret: int | bytes) -> bytes:
    key = struct.pack("!I", secret) if isinstance(secret, int) else secret
    return struct.pack("!III", 12 + len(key), CANCEL_REQUEST_CODE, pid) + key


def query(sql: str) -> bytes:
    return message("Q", _cstr(sql))


def parse(sql: str, name: str = "", param_oids: list[int] = ()) -> bytes:
    body = _cstr(name) + _cstr(sql) + struct.pack("!H", len(param_oids))
    body += b"".join(struct.pack("!I", o) for o in param_oids)
    return message("P", body)


def bind(portal: str = "", statement: str = "", params: list = (), param_formats: list[int] = (),
         result_formats: list[int] = ()) -> bytes:
    body = _cstr(portal) + _cstr(statement)
    body += struct.pack("!H", len(param_formats)) + b"".join(struct.pack("!H", f) for f in param_formats)
    body += struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            b = p if isinstance(p, bytes) else str(p).encode()
            body += struct.pack("!i", len(b)) + b
    body += struct.pack("!H", len(result_formats)) + b"".join(struct.pack("!H", f) for f in result_formats)
    return message("B", body)


def describe(kind: str, name: str = "") -> bytes:
    """kind 'S' (statement) or 'P' (portal)."""
    return message("D", kind.encode() + _cstr(name))


def close(kind: str, name: str = "") -> bytes:
    return message("C", kind.encode() + _cstr(name))


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return message("E", _cstr(portal) + struct.pack("!I", max_rows))


def sync() -> bytes:
    return message("S")


def flush() -> bytes:
    return message("H")


def terminate() -> bytes:
    return message("X")


def password_message(data: bytes) -> bytes:
    return message("p", data)


# -- backend message parsers ---------------------------------------------------------------
def parse_error(body: bytes) -> dict:
    """ErrorResponse / NoticeResponse fields keyed by their one-letter code ('S','V','C','M',...)."""
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def parse_row_description(body: bytes) -> list[dict]:
    (n,) = struct.unpack_from("!H", body, 0)
    pos, cols = 2, []
    for _ in range(n):
        end = body.index(b"\0", pos)
        name = body[pos:end].decode()
        table_oid, attnum, type_oid, typlen, typmod, fmt = struct.unpack_from("!IhIhih", body, end + 1)
        cols.append({"name": name, "table_oid": table_oid, "attnum": attnum, "type_oid": type_oid,
                     "typlen": typlen, "typmod": typmod, "format": fmt})
        pos = end + 1 + 18
    return cols


def parse_data_row(body: bytes) -> list[bytes | None]:
    (n,) = struct.unpack_from("!H", body, 0)
    pos, vals = 2, []
    for _ in range(n):
        (ln,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if ln < 0:
            vals.append(None)
        else:
            vals.append(body[pos:pos + ln])
            pos += ln
    return vals


def parse_negotiate_protocol_version(body: bytes) -> tuple[int, list[str]]:
    """(newest minor version the server supports, unrecognized _pq_ options).
    PostgreSQL 15 sends the whole version word (196608 for 3.0), newer servers only the minor."""
    version, n = struct.unpack_from("!II", body, 0)
    minor = version & 0xFFFF
    opts = [s.decode() for s in body[8:].split(b"\0")[:n]]
    return minor, opts


def parse_backend_key(body: bytes) -> tuple[int, bytes]:
    (pid,) = struct.unpack_from("!I", body, 0)
    return pid, body[4:]


def command_tag(body: bytes) -> str:
    return body.rstrip(b"\0").decode()


# -- client ----------------------------------------------------------------------------------
class WireClient:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                 source: str | None = None):
        """source: the local address to connect from (e.g. "127.0.0.2", another client host)."""
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buf = bytearray()
        self.backend_pid: int | None = None
        self.backend_secret: bytes | None = None
        self.parameters: dict[str, str] = {}
        self.user: str | None = None

    # TLS
    def request_tls(self, context, server_hostname: str | None = None) -> bytes:
        """SSLRequest; on 'S' the socket continues under TLS. Returns the proxy's one-byte answer."""
        self.send(struct.pack("!II", 8, 80877103))
        answer = self.sock.recv(1)
        if answer == b"S":
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        return answer

    def direct_tls(self, context, server_hostname: str | None = None) -> None:
        """PostgreSQL 17's direct TLS: the handshake at once (the context sets ALPN)."""
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    # raw I/O
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int, deadline: float) -> None:
        while len(self._buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"timed out waiting for {n} bytes (have {len(self._buf)})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except ConnectionResetError as e:
                raise ConnectionClosed(f"connection reset ({len(self._buf)} bytes buffered)") from e
            if not chunk:
                raise ConnectionClosed(f"EOF ({len(self._buf)} bytes buffered)")
            self._buf += chunk

    def read_bytes(self, n: int, timeout: float | None = None) -> bytes:
        self._fill(n, time.monotonic() + (self.timeout if timeout is None else timeout))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_message(self, timeout: float | None = None) -> tuple[str, bytes]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(5, deadline)
        type_ = chr(self._buf[0])
        (length,) = struct.unpack_from("!I", self._buf, 1)
        if length < 4 or length > (1 << 30) + 4:
            raise AssertionError(f"backend sent message {type_!r} with absurd length {length}")
        self._fill(1 + length, deadline)
        body = bytes(self._buf[5:1 + length])
        del self._buf[:1 + length]
        return type_, body

    def read_until(self, types: str = "Z", timeout: float | None = None, raise_on_error: bool = False):
        """Reads messages up to and including the first whose type is in `types`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = []
        while True:
            t, body = self.read_message(timeout=max(0.0, deadline - time.monotonic()))
            out.append((t, body))
            if t == "E" and raise_on_error:
                raise ServerError(parse_error(body))
            if t in types:
                return out

    def expect_eof(self, timeout: float | None = None) -> list[tuple[str, bytes]]:
        """Reads messages until the server closes; returns what arrived before the close."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = []
        while True:
            try:
                out.append(self.read_message(timeout=max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                return out

    def read_raw_until_eof(self, timeout: float | None = None) -> bytes:
        """Every byte until the server closes (for answers that need not be well-formed v3 messages).
        Raises socket.timeout if the connection is still open at the deadline."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = bytes(self._buf)
        self._buf.clear()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"connection still open after {len(data)} bytes")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def close(self, abort: bool = False) -> None:
        """abort=True resets the connection (SO_LINGER 0) instead of a graceful FIN."""
        try:
            if abort:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # session helpers
    def startup(self, user: str = "postgres", database: str = "postgres", version: int = PROTOCOL_3_0,
                **params) -> None:
        self.user = user
        self.send(startup_packet({"user": user, "database": database, **params}, version=version))

    def authenticate(self, password: str | None = None, timeout: float | None = None):
        """Completes authentication after startup(); returns all messages through ReadyForQuery.
        An ErrorResponse raises ServerError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = []
        scram = None
        while True:
            t, body = self.read_message(timeout=max(0.0, deadline - time.monotonic()))
            out.append((t, body))
            if t == "E":
                raise ServerError(parse_error(body))
            if t == "R":
                (code,) = struct.unpack_from("!I", body, 0)
                if code == 0:
                    pass
                elif code == 3:
                    self.send(password_message(_cstr(self._need(password))))
                elif code == 5:
                    salt = body[4:8]
                    inner = hashlib.md5((self._need(password) + self.user).encode()).hexdigest()
                    outer = "md5" + hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(password_message(_cstr(outer)))
                elif code == 10:
                    mechs = [m.decode() for m in body[4:].split(b"\0") if m]
                    if "SCRAM-SHA-256" not in mechs:
                        raise AssertionError(f"no supported SASL mechanism in {mechs}")
                    scram = _Scram(self._need(password))
                    first = scram.client_first()
                    self.send(password_message(_cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
                elif code == 11:
                    self.send(password_message(scram.client_final(body[4:])))
                elif code == 12:
                    scram.verify_server_final(body[4:])
                else:
                    raise AssertionError(f"unsupported authentication request {code}")
            elif t == "S":
                k, v = body[:-1].split(b"\0", 1)
                self.parameters[k.decode()] = v.decode()
            elif t == "K":
                self.backend_pid, self.backend_secret = parse_backend_key(body)
            elif t == "Z":
                return out

    @staticmethod
    def _need(password):
        if password is None:
            raise AssertionError("server asked for a password and none was given")
        return password

    def connect(self, user: str = "postgres", database: str = "postgres", password: str | None = None,
                **params):
        self.startup(user, database, **params)
        return self.authenticate(password)

    def simple_query(self, sql: str, timeout: float | None = None):
        """Sends a Query; returns (rows as lists of str/None, command tags, messages). Raises ServerError."""
        self.send(query(sql))
        msgs = self.read_until("Z", timeout=timeout)
        err = [b for t, b in msgs if t == "E"]
        if err:
            raise ServerError(parse_error(err[0]))
        rows = [[None if v is None else v.decode() for v in parse_data_row(b)] for t, b in msgs if t == "D"]
        tags = [command_tag(b) for t, b in msgs if t == "C"]
        return rows, tags, msgs


class _Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password: str):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = None

    def client_first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        sf = server_first.decode()
        attrs = dict(item.split("=", 1) for item in sf.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise AssertionError("server nonce does not extend the client nonce")
        salt = base64.b64decode(attrs["s"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{sf},{without_proof}".encode()
        client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        attrs = dict(item.split("=", 1) for item in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            raise AssertionError("SCRAM server signature mismatch")
