"""``RedisStore``: what every part of ``RedisBroker`` uses: a client for commands, one for
blocking waits, the Lua scripts and the set of routing keys ever used."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bananas.brokers.redis.connection import LeanScripts, connection_class
from bananas.brokers.redis.layout import ROUTING_KEYS
from bananas.envvars import redact_url

logger = logging.getLogger(__name__)
#: URLs already warned about for ``ssl_cert_reqs=none`` in this process.
_WARNED_NO_CERT_CHECKS: set[str] = set()

#: Longest single blocking command; longer waits loop, so a silent server is noticed.
MAX_BLOCK_S = 5.0

_SCRIPT_DIR = resources.files("bananas.brokers.redis").joinpath("scripts")
_SCRIPTS = (
    "submit", "dequeue", "ack", "renew", "requeue", "tick", "cancel", "watch",
    "retry_dead", "purge_dead", "stats", "leader", "release_leader", "fire", "dequeue_filtered", "withdraw",
    "publish_tasks", "release_dead", "dequeue_alone", "wf_submit", "wf_cancel", "wf_retry", "pause",
    "submit_unique",
)  # fmt: skip


class RedisStore:
    """The connections and scripts of one ``RedisBroker`` (see there for the arguments)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.safe_url = redact_url(url)
        self._timeout_s = timeout_s
        if "ssl_cert_reqs=none" in url.lower() and self.safe_url not in _WARNED_NO_CERT_CHECKS:
            _WARNED_NO_CERT_CHECKS.add(self.safe_url)  # once per process, not per broker and clone
            logger.warning(
                "TLS certificate checks are off for %s (ssl_cert_reqs=none): anyone on the path can pose as the "
                "broker; give it ssl_ca_certs=PATH instead", self.safe_url, extra={"component": "broker"},
            )  # fmt: skip
        common: dict[str, Any] = {
            "socket_connect_timeout": timeout_s,
            # One immediate retry on a broken connection (a pooled connection to a server
            # that restarted); none on timeouts, so a frozen server fails within timeout_s.
            "retry": Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,)),
            "health_check_interval": 0,
        }
        packer = connection_class(url)
        if packer is not None:
            common["connection_class"] = packer
        self._r = aioredis.Redis.from_url(url, socket_timeout=timeout_s, **common)
        # Blocking commands get their own pool with a socket timeout above MAX_BLOCK_S.
        self._rb = aioredis.Redis.from_url(url, socket_timeout=MAX_BLOCK_S + timeout_s, **common)
        lib = _SCRIPT_DIR.joinpath("_lib.lua").read_text()
        self._sources = {name: lib + _SCRIPT_DIR.joinpath(f"{name}.lua").read_text() for name in _SCRIPTS}
        self._s = {name: self._r.register_script(text) for name, text in self._sources.items()}
        self._lean = LeanScripts(url, timeout_s)

    async def _hot(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Script ``name`` on the hot path (dequeue, ack), through ``LeanScripts``."""
        return await self._lean.call(self._s[name].sha, self._sources[name], keys, args)

    async def _calls(self, name: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run script ``name`` once per ``(keys, args)`` in one round trip; the replies.

        redis-py's pipelined scripts send ``SCRIPT EXISTS`` before every batch (a command
        per call for an idle scheduler); here EVALSHA goes out as is, and only a call
        refused with NOSCRIPT (a restarted or flushed server) is sent again once the
        script is loaded.
        """
        script = self._s[name]
        if not calls:
            return []
        if len(calls) == 1:
            return [await script(*calls[0])]
        async with self._r.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, r in enumerate(results) if isinstance(r, rexc.NoScriptError)]
        for i in missing:
            results[i] = await script(*calls[i])
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    async def _routing_keys(self) -> list[str]:
        members = await self._r.smembers(ROUTING_KEYS)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)
