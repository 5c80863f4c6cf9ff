"""Zero-configuration OpenTelemetry: the tracer provider and exporters a ``bananas``
process sets up from the standard ``OTEL_*`` variables (the ``otel`` extra).

The CLI calls ``setup_tracing(settings, os.environ)`` when a worker, scheduler,
dashboard or ``submit`` starts. It installs an SDK ``TracerProvider`` only when tracing
is on (``settings.observability.tracing``), ``OTEL_SDK_DISABLED`` is not true, the SDK is
installed and the application has not set a global provider of its own (an app module,
or ``opentelemetry-instrument``, that sets one keeps it). Then:

- the resource is ``Resource.create()`` with ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES`` taken from the mapping given;
- ``OTEL_TRACES_EXPORTER`` (comma-separated, default ``otlp``) names the exporters, one
  ``BatchSpanProcessor`` each: ``otlp``, ``console`` (stdout) or ``none``;
- ``otlp`` speaks ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``:
  ``http/protobuf`` (default) or ``grpc`` (needs ``opentelemetry-exporter-otlp-proto-grpc``),
  to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (``/v1/traces`` appended for HTTP), else the exporter's default (localhost:4318/4317).

Tuning variables (``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``_TIMEOUT``,
``_COMPRESSION``, ``_CERTIFICATE``) are read by the SDK itself, as the specification says.
Call ``shutdown_tracing(provider)`` at exit: it sends the spans still buffered.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bananas.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from bananas.settings import Settings

logger = logging.getLogger(__name__)

#: Exporter names ``OTEL_TRACES_EXPORTER`` may list.
EXPORTERS = ("otlp", "console", "none")
#: OTLP protocols Bananas can speak (``http/json`` has no Python exporter).
PROTOCOLS = ("http/protobuf", "grpc")
#: The OTLP/HTTP path of traces, appended to ``OTEL_EXPORTER_OTLP_ENDPOINT``.
TRACES_PATH = "/v1/traces"

_OTEL_EXTRA = 'pip install "bananas[otel]"'


def setup_tracing(settings: Settings, environ: Mapping[str, str]) -> TracerProvider | None:
    """Install an SDK tracer provider with exporters, when this process needs one.

    Args:
        settings: tracing is set up only when ``settings.observability.tracing`` is on.
        environ: the ``OTEL_*`` variables (the CLI passes ``os.environ``).

    Returns:
        The provider installed as the global one (pass it to ``shutdown_tracing`` at
        exit), or None when nothing was installed.

    Raises:
        ConfigurationError: an unknown exporter or OTLP protocol.
        MissingDependencyError: the chosen exporter's package is not installed.
    """
    if not settings.observability.tracing or _true(environ.get("OTEL_SDK_DISABLED")):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider  # noqa: F401
    except ImportError:
        logger.warning("tracing is on but OpenTelemetry is not installed (%s): no spans", _OTEL_EXTRA)
        return None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        logger.debug("the application set a tracer provider: Bananas leaves it alone")
        return None
    provider = build_tracer_provider(environ)
    trace.set_tracer_provider(provider)
    return provider


def build_tracer_provider(environ: Mapping[str, str]) -> TracerProvider:
    """An SDK ``TracerProvider`` with the resource and exporters ``environ`` names; not
    installed anywhere (``setup_tracing`` makes it the global one).

    Raises:
        ConfigurationError: an unknown exporter or OTLP protocol.
        MissingDependencyError: the chosen exporter's package is not installed.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    factories = {name: _exporter_factory(name, environ) for name in exporter_names(environ) if name != "none"}
    exporters = [(name, make()) for name, make in factories.items()]
    provider = TracerProvider(resource=Resource.create(resource_attributes(environ)))
    for _, exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    service = provider.resource.attributes.get("service.name")
    described = ", ".join(_describe(name, environ) for name, _ in exporters) or "none"
    logger.info("tracing: service %s, exporting spans to %s", service, described, extra={"component": "tracing"})
    return provider


def check_tracing(settings: Settings, environ: Mapping[str, str]) -> None:
    """Check, without installing anything, what ``setup_tracing`` would build (a
    supervisor checks once rather than restarting children that fail the same way).

    Raises:
        ConfigurationError: an unknown exporter or OTLP protocol.
        MissingDependencyError: the chosen exporter's package is not installed.
    """
    if not settings.observability.tracing or _true(environ.get("OTEL_SDK_DISABLED")):
        return
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return
    for name in exporter_names(environ):
        if name != "none":
            _exporter_factory(name, environ)


def shutdown_tracing(provider: TracerProvider) -> None:
    """Send the spans still buffered and stop the exporters. An unreachable collector
    delays this by at most the exporter's timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s)."""
    try:
        provider.shutdown()
    except Exception:  # exporters must not turn a clean exit into a traceback
        logger.exception("flushing spans at exit failed", extra={"component": "tracing"})


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """``OTEL_TRACES_EXPORTER`` as a list of known names (default ``["otlp"]``).

    Raises:
        ConfigurationError: a name that is not one of ``EXPORTERS``.
    """
    raw = environ.get("OTEL_TRACES_EXPORTER", "")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()] or ["otlp"]
    for name in names:
        if name not in EXPORTERS:
            raise ConfigurationError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (Bananas sets up {', '.join(EXPORTERS)}; "
                "for others configure a tracer provider in your app or use opentelemetry-instrument)"
            )
    return list(dict.fromkeys(names))


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """The OTLP protocol for traces (default ``http/protobuf``).

    Raises:
        ConfigurationError: not one of ``PROTOCOLS``.
    """
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip().lower()
        if value:
            if value not in PROTOCOLS:
                raise ConfigurationError(f"{name} must be one of {', '.join(PROTOCOLS)}, got {value!r}")
            return value
    return "http/protobuf"


def otlp_endpoint(environ: Mapping[str, str], protocol: str) -> str | None:
    """The traces endpoint from the mapping (None: the exporter's default)."""
    signal = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if signal:
        return signal
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        return None
    return base if protocol == "grpc" else base.rstrip("/") + TRACES_PATH


def resource_attributes(environ: Mapping[str, str]) -> dict[str, Any]:
    """``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, percent-encoded values) and
    ``OTEL_SERVICE_NAME``, which wins over a ``service.name`` among the attributes."""
    found: dict[str, Any] = {}
    for pair in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            found[key.strip()] = urllib.parse.unquote(value.strip())
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        found["service.name"] = service
    return found


def _exporter_factory(name: str, environ: Mapping[str, str]) -> Callable[[], SpanExporter]:
    """What builds exporter ``name``, checked (protocol, package) but not yet built."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter
    protocol = otlp_protocol(environ)
    endpoint = otlp_endpoint(environ, protocol)
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GRPCExporter,
            )
        except ImportError:
            raise MissingDependencyError(
                "OTLP over gRPC needs its exporter: pip install opentelemetry-exporter-otlp-proto-grpc "
                "(or unset OTEL_EXPORTER_OTLP_PROTOCOL to export over HTTP)"
            ) from None
        return lambda: GRPCExporter(endpoint=endpoint)  # type: ignore[no-any-return,unused-ignore]
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise MissingDependencyError(f"OTLP over HTTP needs its exporter: {_OTEL_EXTRA}") from None
    return lambda: OTLPSpanExporter(endpoint=endpoint)


def _describe(name: str, environ: Mapping[str, str]) -> str:
    if name != "otlp":
        return name
    protocol = otlp_protocol(environ)
    default = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318" + TRACES_PATH
    return f"otlp ({protocol}) {otlp_endpoint(environ, protocol) or default}"


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


__all__ = ["build_tracer_provider", "check_tracing", "setup_tracing", "shutdown_tracing"]
