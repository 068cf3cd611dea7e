"""Shared by every test, unit and integration alike. Nothing here starts Prefect: the test
harness is a fixture of tests/integration/conftest.py, set up only where a flow runs.

Every test process (the main one, or each pytest-xdist worker) gets a Prefect home of its
own before any product module imports Prefect, so that importing a flow module never
touches ~/.prefect and two workers never share a profile, a database or a results store."""

import atexit
import os
import shutil
import tempfile

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="thb-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)


# ---------------------------------------------------------------- parallel runs (pytest-xdist)
#
# pyproject.toml runs the suite with `-n auto --dist loadgroup --no-loadscope-reorder`: tests
# with one xdist_group mark run in one worker, in collection order; every other test is
# scheduled on its own. Below, (1) the tests that use an expensive session fixture get the
# group of that fixture, so that it is built in one worker only, and (2) the collection is
# ordered longest work first, so that the long groups start at once and the many short tests
# fill in at the end (a long group handed out last would run alone while the other worker
# idles). Modules whose module-scoped fixtures are expensive carry a group mark themselves.

SESSION_GROUPS = {  # a session fixture → the group of every test that uses it
    "ingested": "released",  # `released` is the ingested directory, released in place
    "released": "released",
    "realistic": "realistic",
}
LONGEST_FIRST = [  # groups, longest first (--durations on 2 cores)
    "released",
    "crash-recovery",
    "coverage-worlds",
    "readers",
    "no-leaks",
    "realistic",
    "simulator",
    "hostile",
]


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return (mark.args[0] if mark.args else mark.kwargs.get("name")) if mark else None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((g for f, g in SESSION_GROUPS.items() if f in names), None)
        if group and not _group(item):
            item.add_marker(pytest.mark.xdist_group(group))

    def rank(item: pytest.Item) -> int:
        group = _group(item)
        if group in LONGEST_FIRST:
            return LONGEST_FIRST.index(group)
        if "/integration/" in item.nodeid:
            return len(LONGEST_FIRST)
        return len(LONGEST_FIRST) + 1  # unit tests and doctests: many and short

    items.sort(key=rank)  # stable: within a rank, collection order (modules stay whole)
