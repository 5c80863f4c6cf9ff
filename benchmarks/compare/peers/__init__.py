"""One small adapter module per peer; each runs inside benchmarks/compare/.venv.

An adapter reads the Redis URL from ``BENCH_REDIS_URL`` at import (its workers import it
too) and provides:

- ``GUARANTEE``: one line on its delivery guarantee in the configuration used;
- ``CONFIG``: the 2-core configuration, in words;
- ``submit_noop()`` and ``submit_stamp(t)`` (sync or async): enqueue one job;
- optionally ``submit_batch(n)``: enqueue ``n`` no-op jobs in its batch API;
- ``worker_commands()``: the argv of each worker process to start;
- optionally ``async def open()`` / ``close()`` around the client side.

Handlers record completion the same way for every peer: ``noop`` does ``INCR bench:done``
and ``stamp(t)`` pushes ``time.time() - t`` onto ``bench:lat`` (one extra round trip
per job that Bananas' own scenarios do not pay).
"""
