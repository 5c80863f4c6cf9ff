"""Check payloads against a handler's type hints (msgspec builds the validator once)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from bananas.context import Context
from bananas.errors import ConfigurationError, PayloadError


class PayloadSpec:
    """How to call one handler: its validator and where the ``Context`` goes."""

    __slots__ = ("_fields", "_partial", "context_param", "is_async", "open_kwargs", "struct")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:  # noqa: BLE001 - any failure here means unreadable hints
            raise ConfigurationError(f"cannot read the type hints of task {name!r}: {exc}") from None
        self.is_async = inspect.iscoroutinefunction(fn)
        self.context_param: str | None = None
        self.open_kwargs = False
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for param in inspect.signature(fn).parameters.values():
            hint = hints.get(param.name, Any)
            if hint is Context:
                self.context_param = param.name
                continue
            if param.kind is param.VAR_KEYWORD:
                self.open_kwargs = True
                continue
            if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
                raise ConfigurationError(f"task {name!r}: parameter {param.name!r} must be passable by keyword")
            if param.default is param.empty:
                fields.append((param.name, hint))
            else:
                fields.append((param.name, hint, param.default))
        self.struct = msgspec.defstruct(
            f"{name}_payload", fields, kw_only=True, forbid_unknown_fields=not self.open_kwargs
        )
        self._fields = fields
        self._partial: dict[frozenset[str], type[msgspec.Struct]] = {}

    @property
    def parameters(self) -> list[str]:
        """The payload's parameters in the handler's order (not the ``Context`` one)."""
        return [f[0] for f in self._fields]

    def check_known(self, payload: Any, filled_later: frozenset[str]) -> None:
        """Check a payload whose ``filled_later`` parameters are not known yet (a workflow
        node's inputs): they may be missing, everything else must fit.

        Raises:
            PayloadError: it does not fit.
        """
        struct = self._partial.get(filled_later)
        if struct is None:
            fields = [(f[0], Any, None) if f[0] in filled_later else f for f in self._fields]
            struct = self._partial[filled_later] = msgspec.defstruct(
                self.struct.__name__, fields, kw_only=True, forbid_unknown_fields=not self.open_kwargs
            )
        try:
            msgspec.convert(payload, struct, strict=True)
        except msgspec.ValidationError as exc:
            raise PayloadError(f"payload does not fit the handler: {exc}", field=_field(str(exc))) from None

    def check(self, payload: Any) -> dict[str, Any]:
        """Return the keyword arguments for the handler.

        Raises:
            PayloadError: the payload is not an object or does not fit the hints.
        """
        if not isinstance(payload, dict):
            raise PayloadError(f"payload must be a JSON object, got {type(payload).__name__}")
        try:
            value = msgspec.convert(payload, self.struct, strict=True)
        except msgspec.ValidationError as exc:
            raise PayloadError(f"payload does not fit the handler: {exc}", field=_field(str(exc))) from None
        kwargs = msgspec.structs.asdict(value)
        if self.open_kwargs:
            extra = {k: v for k, v in payload.items() if k not in kwargs}
            kwargs.update(extra)
        return kwargs


def _field(message: str) -> str | None:
    """The field a msgspec validation message names (``... - at `$.to.city```), dotted."""
    _, sep, where = message.rpartition(" - at `$")
    if not sep:
        named = message.partition(" field `")[2]  # "missing required field `x`", "unknown field `x`"
        return named.rstrip("`") or None
    return where.rstrip("`").lstrip(".").replace("[", ".").replace("]", "") or None
