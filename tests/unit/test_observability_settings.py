"""Settings for the log tiers and observability, and the middleware chain."""

from __future__ import annotations

import pytest

from bananas import ConfigurationError, Settings
from bananas.brokers.base import Delivery, Outcome
from bananas.middleware import Middleware, MiddlewareChain
from bananas.observability import default_middleware
from bananas.observability.tracing import TracingMiddleware


def test_log_tiers_from_env() -> None:
    s = Settings.from_env(
        {
            "LOG_FILE_ENABLED": "true", "LOG_FILE_PATH": "/tmp/b.log", "LOG_FILE_MAX_SIZE_MB": "5",
            "LOG_FILE_MAX_BACKUPS": "2", "LOG_FILE_MAX_AGE_DAYS": "7", "LOG_FILE_COMPRESS": "false",
            "LOG_FILE_LEVEL": "debug", "LOG_ES_ENABLED": "1", "LOG_ES_ADDRESSES": "http://a:9200,http://b:9200",
            "LOG_ES_INDEX_PREFIX": "x", "LOG_ES_LEVEL": "warning", "LOG_ES_FLUSH_INTERVAL": "500ms",
            "LOG_ES_FLUSH_BYTES": "4096", "LOG_ES_NUM_WORKERS": "3", "LOG_ES_API_KEY": "k", "LOG_COLOR": "false",
            "BANANAS_METRICS_PORT": "9100",
        }
    )  # fmt: skip
    lg = s.logs
    assert (lg.file_enabled, lg.file_path, lg.file_max_size_mb, lg.file_max_backups) == (True, "/tmp/b.log", 5, 2)
    assert (lg.file_max_age_days, lg.file_compress, lg.file_level) == (7, False, "DEBUG")
    assert lg.es_addresses == ("http://a:9200", "http://b:9200") and lg.es_flush_interval_s == 0.5
    assert (lg.es_level, lg.es_num_workers, lg.es_api_key, lg.color) == ("WARNING", 3, "k", False)
    assert s.observability.metrics_port == 9100 and not s.observability.tracing


def test_tracing_is_on_with_any_otel_variable() -> None:
    assert Settings.from_env({"OTEL_SERVICE_NAME": "svc"}).observability.tracing
    assert not Settings.from_env({"OTEL_SERVICE_NAME": "svc", "OTEL_SDK_DISABLED": "true"}).observability.tracing
    assert not Settings.from_env({"OTEL_SERVICE_NAME": "svc", "BANANAS_TRACING": "off"}).observability.tracing
    (mw,) = default_middleware(Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}))
    assert isinstance(mw, TracingMiddleware)
    assert default_middleware(Settings()) == []


@pytest.mark.parametrize(
    "env",
    [
        {"LOG_FILE_LEVEL": "loud"},
        {"LOG_FILE_MAX_SIZE_MB": "0"},
        {"LOG_ES_FLUSH_BYTES": "10"},
        {"BANANAS_METRICS_PORT": "70000"},
    ],
)
def test_bad_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_chain_is_none_without_middleware_and_skips_untouched_hooks() -> None:
    assert MiddlewareChain.of([]) is None
    seen: list[str] = []

    class OnlyAck(Middleware):
        def after_ack(self, outcome: Outcome, accepted: bool) -> None:
            seen.append(f"ack {accepted}")

        def after_retry(self, ctx: object, outcome: Outcome) -> None:
            raise RuntimeError("swallowed")

    chain = MiddlewareChain.of([OnlyAck()])
    assert chain is not None
    assert chain._after_ack and not chain._before_submit  # type: ignore[attr-defined]
    out = Outcome("id", "default", 1, "retry", 1)
    chain.after_ack(out, True)
    chain.after_execute(None, Delivery("id", "default", b"{}", 0, 1), out, 0.1)  # after_retry raises: logged only
    assert seen == ["ack True"]
