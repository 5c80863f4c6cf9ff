"""Helpers for testing code that uses Bananas (docs/TESTING.md).

- ``eager(app)``: submits run their jobs in this process and store the outcome.
- ``join(worker)`` / ``join(app, "email")``: return once the queue is drained and every
  outcome is stored (``join_blocking`` for synchronous code); ``JoinTimeout`` otherwise.
- ``running_worker(app)``: a worker on the test's event loop; ``WorkerThread(app)``: one
  in a background thread for synchronous tests.
- ``wait_until(check, timeout, what)``: for conditions that no event announces.
- ``RedisServer``, ``free_port``: a throwaway ``redis-server`` (with a password, or TLS
  with certificates from ``make_tls_files``).
- The pytest plugin ``bananas.testing.plugin`` (loaded through the ``pytest11`` entry
  point) provides the ``bananas_app``, ``bananas_eager``, ``bananas_worker``,
  ``redis_server`` and ``redis_url`` fixtures.
"""

from __future__ import annotations

from bananas.errors import JoinTimeout, WaitTimeout
from bananas.testing.eager import EagerRunner, eager
from bananas.testing.join import join, join_blocking
from bananas.testing.server import RedisServer, free_port
from bananas.testing.tls import TlsFiles, make_tls_files
from bananas.testing.waiting import wait_until, wait_until_async
from bananas.testing.workers import WorkerThread, running_worker

__all__ = [
    "EagerRunner",
    "JoinTimeout",
    "RedisServer",
    "TlsFiles",
    "WaitTimeout",
    "WorkerThread",
    "eager",
    "free_port",
    "join",
    "join_blocking",
    "make_tls_files",
    "running_worker",
    "wait_until",
    "wait_until_async",
]
