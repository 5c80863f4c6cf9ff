"""Sources of workflow values: the node ids a source names, and its value from the stored
results (``NodeInput.source``: an id, ``{"node": id, "path": [...]}``, or a list)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bananas import wire


def source_nodes(source: Any) -> Iterator[str]:
    """Every node id ``source`` reads."""
    if isinstance(source, str):
        yield source
    elif isinstance(source, dict):
        yield str(source.get("node"))
    elif isinstance(source, list):
        for item in source:
            yield from source_nodes(item)


def resolve(source: Any, results: Mapping[str, bytes]) -> Any:
    """The value of ``source`` given the stored (encoded) results.

    Raises:
        LookupError: a node without a stored result, or a path that does not exist in it.
    """
    if isinstance(source, list):
        return [resolve(item, results) for item in source]
    if isinstance(source, dict):
        value = resolve(str(source.get("node")), results)
        for step in source.get("path", ()):
            try:
                value = value[step]
            except (KeyError, IndexError, TypeError):
                raise LookupError(f"node {source.get('node')!r}'s result has no item {step!r}") from None
        return value
    stored = results.get(source)
    if stored is None:
        raise LookupError(f"node {source!r} has no stored result")
    return wire.decode(stored)
