"""``bananas bench``: the benchmark scenarios against a throwaway local Redis.

Scenarios (each one a function in this package, run by ``runner.run``): ``limit``
(hand-written redis-py ceilings), ``enqueue``, ``drain``, ``latency``, ``idle``,
``memory``, ``payloads``, ``depth`` and ``sqlite``. Workers are real ``bananas worker``
processes running the no-op tasks of ``bananas.bench.tasks`` (this package imports
nothing, so that those workers load only the tasks module).
"""
