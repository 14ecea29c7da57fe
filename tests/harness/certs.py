"""Certificates made with the openssl CLI for TLS tests: a CA, server certificates that name
127.0.0.1 and localhost, client certificates whose common name is a user, and an unrelated CA.

    certs = Certs(tmpdir)
    server = certs.server("proxy")          # -> Pair(cert, key), signed by certs.ca
    client = certs.client("alice")          # CN=alice, signed by certs.ca
    other = Certs(tmpdir2)                  # a CA nobody trusts here: wrong-CA tests
    certs.ca_file                           # PEM of the CA certificate
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


@dataclass
class Pair:
    cert: str
    key: str


def _openssl(*args: str, cwd: str | None = None) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


class Certs:
    def __init__(self, directory: str, name: str = "Test CA"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_file = os.path.join(directory, "ca.crt")
        self.ca_key = os.path.join(directory, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-sha256", "-days", "3", "-subj", f"/CN={name}", "-keyout", self.ca_key,
                 "-out", self.ca_file)
        self._serial = 1

    def _sign(self, stem: str, subject: str, extensions: str, key: str = "ec") -> Pair:
        cert = os.path.join(self.dir, f"{stem}.crt")
        keyfile = os.path.join(self.dir, f"{stem}.key")
        csr = os.path.join(self.dir, f"{stem}.csr")
        ext = os.path.join(self.dir, f"{stem}.ext")
        with open(ext, "w") as f:
            f.write(extensions)
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else \
            ["-newkey", "rsa:2048"]
        _openssl("req", "-new", *newkey, "-nodes", "-subj", subject, "-keyout", keyfile, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", self.ca_key,
                 "-set_serial", str(self._serial), "-days", "3", "-sha256", "-extfile", ext,
                 "-out", cert)
        self._serial += 1
        os.chmod(keyfile, 0o600)
        return Pair(cert, keyfile)

    def server(self, stem: str, names: tuple[str, ...] = ("127.0.0.1", "localhost"),
               key: str = "ec") -> Pair:
        alt = ",".join(("IP:" if n.replace(".", "").isdigit() else "DNS:") + n for n in names)
        return self._sign(stem, f"/CN={names[0]}",
                          f"subjectAltName={alt}\nextendedKeyUsage=serverAuth\n", key)

    def client(self, user: str) -> Pair:
        return self._sign(f"client-{user}", f"/CN={user}", "extendedKeyUsage=clientAuth\n")


def give_to_postgres(*paths: str) -> None:
    """PostgreSQL reads its key as the postgres OS user (the harness runs it so when root)."""
    if os.geteuid() != 0:
        return
    import pwd
    pw = pwd.getpwnam("postgres")
    for path in paths:
        os.chown(path, pw.pw_uid, pw.pw_gid)
