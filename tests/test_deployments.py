"""prefect.yaml declares deployments that point at real flows."""

import importlib.util
from pathlib import Path

import yaml
from prefect import Flow

REPO = Path(__file__).resolve().parent.parent


def test_every_deployment_points_at_a_flow():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert "ingest" in names
    for d in spec["deployments"]:
        path, func = d["entrypoint"].split(":")
        module_spec = importlib.util.spec_from_file_location("entry", REPO / path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        assert isinstance(getattr(module, func), Flow), d["name"]
        for schedule in d.get("schedules", []):
            assert len(schedule["cron"].split()) == 5
