"""A throwaway ``redis-server`` on a free port, for tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from bananas.testing.tls import TlsFiles


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process that a test can kill, restart and pause.

    Args:
        workdir: where its log (and AOF when ``persistent``) go.
        persistent: keep an fsync-always append-only file, so that a restart loses
            nothing that was acknowledged.
        port: default a free one.
        password: require it (``requirepass``); ``url`` and ``client()`` carry it.
        tls: serve TLS only, with these certificates (``make_tls_files``); ``url`` is then
            ``rediss://`` with the CA. ``client_certs``: require clients to present one.

    Raises:
        FileNotFoundError: there is no ``redis-server`` binary.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        persistent: bool = False,
        port: int | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
        client_certs: bool = False,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.persistent = persistent
        self.password = password
        self.tls = tls
        self.client_certs = client_certs
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``redis://:PASSWORD@...`` with a password)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?{self.tls.query(client_cert=self.client_certs)}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]  # fmt: skip
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls is not None:
            t = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(t.server_cert),
                     "--tls-key-file", str(t.server_key), "--tls-ca-cert-file", str(t.ca),
                     "--tls-auth-clients", "yes" if self.client_certs else "no"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client(socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:  # a starting server gives no event to wait on; ask until it answers
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise RuntimeError(f"redis-server did not start: {self.log()}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (resuming it first if paused)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain redis-py client on this server (TLS with the client certificate when
        the server serves TLS)."""
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca), ssl_certfile=str(self.tls.client_cert),
                          ssl_keyfile=str(self.tls.client_key))  # fmt: skip
        return redis.Redis(port=self.port, password=self.password, **kwargs)

    def log(self) -> str:
        """The tail of the server log."""
        path = self.workdir / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""
