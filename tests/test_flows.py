"""The Prefect layer: deployments point at flows, and the ingest flow runs for real."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.testing.utilities import prefect_test_harness

from repometer.registry import add_repository
from repometer.settings import Settings, get_settings
from repometer.storage import open_store

ROOT = Path(__file__).resolve().parents[1]


def _deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_every_deployment_entrypoint_is_a_flow(deployment: dict) -> None:
    path, _, name = deployment["entrypoint"].partition(":")
    spec = importlib.util.spec_from_file_location(f"entrypoint_{name}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, name)
    assert isinstance(flow, Flow)
    assert flow.name == deployment["name"]


def test_ingest_flow_stores_the_history(make_repo, tmp_path, monkeypatch) -> None:
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("first")
    repo.write("a.txt", "one\ntwo\n")
    head = repo.commit("second")
    settings = Settings(home=tmp_path / "home")
    monkeypatch.setenv("REPOMETER_HOME", str(settings.home))
    get_settings.cache_clear()
    store = open_store(settings.database_url)
    record, _ = add_repository(store, settings, str(repo.path))

    from flows.ingest import ingest_repository

    with prefect_test_harness(server_startup_timeout=120):
        result = ingest_repository(record.name)

    get_settings.cache_clear()
    assert result["added"] == 2
    assert result["head"] == head
    assert store.get_repository(record.id).head == head
    assert store.totals(record.id).lines_added == 2
