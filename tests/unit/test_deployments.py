"""prefect.yaml declares deployments that point at real flows."""

import importlib.util

import yaml
from prefect import Flow

from tests.helpers import REPO


def test_every_deployment_points_at_a_flow():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert {"ingest", "quarterly-release"} <= names
    for d in spec["deployments"]:
        path, func = d["entrypoint"].split(":")
        module_spec = importlib.util.spec_from_file_location("entry", REPO / path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        assert isinstance(getattr(module, func), Flow), d["name"]
        for schedule in d.get("schedules", []):
            assert len(schedule["cron"].split()) == 5


def test_the_quarterly_release_runs_after_each_quarter_is_complete():
    from datetime import date

    from dp.spec import release_spec
    from thb.periods import Period

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    cron = next(d for d in spec["deployments"] if d["name"] == "quarterly-release")["schedules"][0]["cron"]
    minute, hour, day, months, _ = cron.split()
    for month in map(int, months.split(",")):
        run = date(2025, month, int(day))
        closed = {2: "2024-Q4", 5: "2025-Q1", 8: "2025-Q2", 11: "2025-Q3"}[month]
        assert release_spec().calendar.opens(Period.parse(closed)) <= run
