"""One small adapter module per peer; each runs inside benchmarks/compare/.venv.

An adapter reads the Redis URL from ``BENCH_REDIS_URL`` at import (its workers import it
too) and provides:

- ``GUARANTEE``: one line on its delivery guarantee in the configuration used;
- ``CONFIG``: the 2-core configuration, in words;
- ``submit_noop()`` and ``submit_stamp(t)`` (sync or async): enqueue one job;
- optionally ``submit_batch(n)``: enqueue ``n`` no-op jobs in its batch API;
- ``worker_commands(config=...)``: the argv of each worker process to start;
- optionally ``CONFIGS``: labels of the 2-core configurations ``worker_commands`` takes
  (the drain is run with each and the best one is reported; default: one configuration);
- optionally ``async def open()`` / ``close()`` around the client side.

Handlers record completion the same way for every peer: ``noop`` does ``INCR bench:done``
and ``stamp(t)`` pushes ``time.time() - t`` onto ``bench:lat``. That ``INCR`` is also the
drain's job body: one Redis round trip, with ``redis.asyncio`` in the asyncio peers and
with redis-py's sync client in the thread/process ones (their natural way to do I/O, and
faster for them than an event loop per thread). Bananas' side drains its ``io`` task,
whose body is the same ``INCR`` with ``redis.asyncio``.
"""
