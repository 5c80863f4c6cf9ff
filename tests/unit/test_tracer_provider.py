"""Zero-configuration tracing: what ``OTEL_*`` mappings build, and the clear errors for
what Bananas cannot set up. No provider is installed globally here."""

from __future__ import annotations

import sys

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from bananas import ConfigurationError, MissingDependencyError, Settings
from bananas.observability.tracer_provider import (
    build_tracer_provider,
    check_tracing,
    exporter_names,
    otlp_endpoint,
    otlp_protocol,
    resource_attributes,
    setup_tracing,
)


def exporters(provider: TracerProvider) -> list[object]:
    processors = provider._active_span_processor._span_processors
    return [p._batch_processor._exporter for p in processors if isinstance(p, BatchSpanProcessor)]


def test_defaults_to_otlp_over_http_with_the_service_name() -> None:
    env = {"OTEL_SERVICE_NAME": "billing", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}  # fmt: skip
    provider = build_tracer_provider(env)
    try:
        attrs = provider.resource.attributes
        assert (attrs["service.name"], attrs["deployment.environment"], attrs["team"]) == ("billing", "prod", "a b")
        (exporter,) = exporters(provider)
        assert isinstance(exporter, OTLPSpanExporter) and exporter._endpoint == "http://collector:4318/v1/traces"
    finally:
        provider.shutdown()


def test_exporter_list_console_and_none() -> None:
    provider = build_tracer_provider({"OTEL_TRACES_EXPORTER": "console, none"})
    try:
        assert [type(e) for e in exporters(provider)] == [ConsoleSpanExporter]
    finally:
        provider.shutdown()
    provider = build_tracer_provider({"OTEL_TRACES_EXPORTER": "none"})
    assert exporters(provider) == []
    provider.shutdown()


def test_names_protocols_and_endpoints() -> None:
    assert exporter_names({}) == ["otlp"] and exporter_names({"OTEL_TRACES_EXPORTER": "OTLP,console,otlp"}) == [
        "otlp", "console",
    ]  # fmt: skip
    assert otlp_protocol({}) == "http/protobuf"
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"
    assert otlp_protocol(
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
    ) == ("http/protobuf")
    assert otlp_endpoint({}, "http/protobuf") is None
    assert otlp_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, "grpc") == "http://c:4317"
    signal = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x"}
    assert otlp_endpoint(signal, "http/protobuf") == "http://t/x"
    assert resource_attributes({"OTEL_RESOURCE_ATTRIBUTES": "service.name=a", "OTEL_SERVICE_NAME": "b"}) == {
        "service.name": "b"
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL must be one of"),
    ],
)
def test_bad_values_are_configuration_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_tracer_provider(env)


def test_grpc_without_its_exporter_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    with pytest.raises(MissingDependencyError, match="pip install opentelemetry-exporter-otlp-proto-grpc"):
        build_tracer_provider({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


def test_http_exporter_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "bananas\[otel\]"'):
        build_tracer_provider({})


def test_setup_installs_nothing_unless_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert setup_tracing(Settings.from_env({}), {}) is None  # tracing off
    forced = {"BANANAS_TRACING": "on", "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "bogus"}
    assert setup_tracing(Settings.from_env(forced), forced) is None  # the SDK is disabled
    own = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: own)  # the app set its own
    env = {"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_EXPORTER": "bogus"}
    assert setup_tracing(Settings.from_env(env), env) is None


def test_setup_installs_a_provider_over_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[object] = []
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    env = {"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_EXPORTER": "console"}
    provider = setup_tracing(Settings.from_env(env), env)
    assert provider is not None and installed == [provider]
    assert provider.resource.attributes["service.name"] == "svc"
    provider.shutdown()


def test_check_tracing_raises_what_setup_would() -> None:
    env = {"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_EXPORTER": "otlp,bogus"}
    with pytest.raises(ConfigurationError, match="'bogus'"):
        check_tracing(Settings.from_env(env), env)
    check_tracing(Settings.from_env({}), {"OTEL_TRACES_EXPORTER": "bogus"})  # tracing off: not looked at
    ok = {"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_EXPORTER": "console,otlp"}
    check_tracing(Settings.from_env(ok), ok)
