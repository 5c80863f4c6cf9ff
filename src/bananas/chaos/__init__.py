"""Failure injection for resilience testing (issue 11, plan tasks 9.1 and 9.2).

A ``ChaosConfig`` (in code, or a TOML file named by ``BANANAS_CHAOS``) makes workers and
clients inject faults: job failures, latency, timeouts, crashes, memory held, corrupted
bodies, broker connection errors and partitions. It switches on only where
``BANANAS_ENV`` is one of the environments it names, and refuses loudly elsewhere. Every
fault is logged (``chaos_kind``) and counted in ``bananas_chaos_injected_total{kind}``.
Experiments that drive a deployment and write resilience reports are
``bananas.resilience`` (``bananas chaos run``). See docs/CHAOS.md.
"""

from bananas.chaos.config import CHAOS_ENV, ENV_ENV, ChaosConfig, ChaosRefused, Latency, Memory, Partition, from_env
from bananas.chaos.inject import KINDS, InjectedFault, Injector, add_listener, arm, chaos_broker, chaos_tasks

__all__ = [
    "CHAOS_ENV", "ENV_ENV", "KINDS", "ChaosConfig", "ChaosRefused", "InjectedFault", "Injector", "Latency",
    "Memory", "Partition", "add_listener", "arm", "chaos_broker", "chaos_tasks", "from_env",
]  # fmt: skip
