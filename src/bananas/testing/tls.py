"""Certificates for a throwaway TLS ``redis-server``: a private CA, a server certificate
for 127.0.0.1 and a client certificate, made with ``openssl``."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA, the server's certificate and key, a client's certificate and key."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def query(self, *, client_cert: bool = False) -> str:
        """The URL query a client needs: the CA, and the client certificate if asked."""
        q = f"ssl_ca_certs={self.ca}"
        if client_cert:
            q += f"&ssl_certfile={self.client_cert}&ssl_keyfile={self.client_key}"
        return q


def make_tls_files(directory: Path, name: str = "test") -> TlsFiles:
    """A new CA and the certificates it signs, in ``directory`` (valid for a day).

    Raises:
        FileNotFoundError: there is no ``openssl`` binary.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    d = directory

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", f"/CN={name}-ca")  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
            "-subj", f"/CN={name}-{who}")  # fmt: skip
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{who}.pem", "-days", "1", "-extfile", "san.cnf")  # fmt: skip
    return TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")
