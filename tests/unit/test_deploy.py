"""deploy/: Kubernetes manifests against the Kubernetes schemas, Compose files and systemd
units for shape and for worker settings this version accepts (no container engine here)."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from bananas.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("path", sorted((DEPLOY / "kubernetes").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_match_schema(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_kubernetes_has_worker_scheduler_redis_and_hpa() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for p in (DEPLOY / "kubernetes").glob("*.yaml")
             for d in yaml.safe_load_all(p.read_text()) if d}  # fmt: skip
    assert {("Deployment", "bananas-worker"), ("Deployment", "bananas-scheduler"), ("StatefulSet", "redis"),
            ("HorizontalPodAutoscaler", "bananas-worker")} <= kinds  # fmt: skip


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


@pytest.mark.parametrize("name", ["thin", "default", "specialized", "job-specialized"])
def test_compose_files_use_valid_worker_settings(name: str) -> None:
    doc = yaml.safe_load((DEPLOY / "compose" / f"{name}.yml").read_text())
    services = doc["services"]
    assert "redis" in services
    modes = set()
    for svc in services.values():
        assert isinstance(svc.get("image"), str)
        if "command" in svc and "worker" in svc["command"]:
            env = _env(svc)
            settings = Settings.from_env(env)
            flags = svc["command"]
            if "--mode" in flags:
                settings = settings.with_worker(mode=flags[flags.index("--mode") + 1])
            modes.add(settings.worker.mode)
    assert name in modes or (name == "default" and "default" in modes)


@pytest.mark.parametrize("path", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_systemd_units_parse(path: Path) -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    assert unit["Service"]["ExecStart"].split()[1] in ("worker", "scheduler")
    assert unit["Service"]["Restart"] == "always"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
