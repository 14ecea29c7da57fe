#!/usr/bin/python3
"""pgjdbc (Debian's libpostgresql-jdbc-java, Java 17) and node-postgres (npm's pg) through the
proxy over TLS with the proxy authenticating: sslmode=require and verify-full, channel binding
where the driver offers it (node-postgres; Debian's pgjdbc 42.5 does not bind), client
certificates against client_tls.sslmode = verify-full, and a wrong CA that fails on the client.
A driver that is not installed is skipped with the reason."""

import os
import shutil
import subprocess
import tempfile
import unittest

import e2e_common

from tls_common import MD5_PW, SCRAM_PW, TlsWorld

HERE = os.path.dirname(os.path.abspath(__file__))
JDBC_JAR = os.environ.get("SEEDPROXY_JDBC_JAR", "/usr/share/java/postgresql.jar")
NODE_DIR = os.environ.get("SEEDPROXY_NODE_MODULES_DIR", "/tmp/seedproxy-node")

world: TlsWorld = None
px = None
strict = None  # client_tls.sslmode = verify-full: a client certificate naming the user
java_classes: str | None = None
java_skip = ""
node_skip = ""


def prepare_java() -> None:
    global java_classes, java_skip
    if not (shutil.which("javac") and shutil.which("java") and os.path.exists(JDBC_JAR)):
        java_skip = f"needs javac, java and {JDBC_JAR} (scripts/setup.sh installs libpostgresql-jdbc-java)"
        return
    java_classes = tempfile.mkdtemp(prefix="seedproxy-jdbc-")
    subprocess.run(["javac", "-d", java_classes, os.path.join(HERE, "drivers", "TlsProbe.java")],
                   check=True, capture_output=True, timeout=120)


def prepare_node() -> None:
    global node_skip
    if not shutil.which("node") or not shutil.which("npm"):
        node_skip = "needs node and npm"
        return
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "pg")):
        os.makedirs(NODE_DIR, exist_ok=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_DIR, "pg@8"],
                              capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            node_skip = f"npm install pg failed: {done.stderr[-500:]}"


def setUpModule():
    global world, px, strict
    world = TlsWorld()
    px = world.proxy()
    strict = world.proxy(client_mode="verify-full")
    prepare_java()
    prepare_node()


def tearDownModule():
    e2e_common.finish(px)
    e2e_common.finish(strict)
    if world is not None:
        world.close()
    if java_classes:
        shutil.rmtree(java_classes, ignore_errors=True)


def jdbc(user: str, password: str, port: int | None = None, **props: str) -> str:
    args = ["java", "-cp", f"{java_classes}:{JDBC_JAR}", "TlsProbe",
            f"jdbc:postgresql://127.0.0.1:{port or px.port}/postgres", "user", user,
            "password", password]
    for k, v in props.items():
        args += [k, v]
    return subprocess.run(args, capture_output=True, text=True, timeout=60).stdout.strip()


def node(user: str, password: str, ca: str, servername: str = "127.0.0.1",
         port: int | None = None, pair=None) -> str:
    """ca "-": sslmode=require (no verification); pair: a client certificate and key."""
    env = {**os.environ, "NODE_PATH": os.path.join(NODE_DIR, "node_modules")}
    args = ["node", os.path.join(HERE, "drivers", "tls_probe.js"), str(port or px.port), user,
            password, ca, servername]
    if pair:
        args += [pair.cert, pair.key]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env).stdout.strip()


class Pgjdbc(unittest.TestCase):
    def setUp(self):
        if java_skip:
            self.skipTest(java_skip)

    def test_verify_full_and_require(self):
        self.assertEqual(jdbc("scram_user", SCRAM_PW, sslmode="verify-full",
                              sslrootcert=world.certs.ca_file), "ok scram_user true")
        self.assertEqual(jdbc("md5_user", MD5_PW, sslmode="require"), "ok md5_user true")

    def test_wrong_ca_fails_on_the_client(self):
        out = jdbc("scram_user", SCRAM_PW, sslmode="verify-full", sslrootcert=world.other.ca_file)
        self.assertTrue(out.startswith("error"), out)
        self.assertIn("SSL", out)

    def test_wrong_password(self):
        out = jdbc("scram_user", "wrong", sslmode="require")
        self.assertIn('password authentication failed for user "scram_user"', out)

    def test_client_certificate(self):
        def login(pair) -> str:
            pk8 = pair.key + ".pk8"  # pgjdbc reads keys as PKCS#8 DER
            subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER",
                            "-in", pair.key, "-out", pk8], check=True, capture_output=True)
            return jdbc("scram_user", SCRAM_PW, port=strict.port, sslmode="verify-full",
                        sslrootcert=world.certs.ca_file, sslcert=pair.cert, sslkey=pk8)
        self.assertEqual(login(world.certs.client("scram_user")), "ok scram_user true")
        out = login(world.certs.client("mallory"))
        self.assertIn('certificate authentication failed for user "scram_user"', out)


class NodePostgres(unittest.TestCase):
    def setUp(self):
        if node_skip:
            self.skipTest(node_skip)

    def test_verify_full_with_channel_binding(self):
        self.assertEqual(node("scram_user", SCRAM_PW, world.certs.ca_file), "ok scram_user true")
        self.assertIn("user=scram_user database=postgres", px.log_text())
        self.assertIn("auth=SCRAM-SHA-256-PLUS", px.log_text())  # pg binds to the proxy's certificate

    def test_require_without_verifying(self):
        self.assertEqual(node("scram_user", SCRAM_PW, "-"), "ok scram_user true")
        self.assertEqual(node("md5_user", MD5_PW, "-"), "ok md5_user true")

    def test_client_certificate(self):
        alice = world.certs.client("scram_user")
        self.assertEqual(node("scram_user", SCRAM_PW, world.certs.ca_file, port=strict.port,
                              pair=alice), "ok scram_user true")
        out = node("scram_user", SCRAM_PW, world.certs.ca_file, port=strict.port,
                   pair=world.certs.client("mallory"))
        self.assertIn('certificate authentication failed for user "scram_user"', out)
        out = node("scram_user", SCRAM_PW, world.certs.ca_file, port=strict.port)
        self.assertTrue(out.startswith("error"), out)

    def test_wrong_ca_and_wrong_name_fail_on_the_client(self):
        out = node("scram_user", SCRAM_PW, world.other.ca_file)
        self.assertTrue(out.startswith("error"), out)
        self.assertIn("certificate", out)
        out = node("scram_user", SCRAM_PW, world.certs.ca_file, servername="db.invalid")
        self.assertTrue(out.startswith("error"), out)


if __name__ == "__main__":
    e2e_common.main()
