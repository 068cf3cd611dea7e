"""Shared by every test, unit and integration alike. Nothing here starts Prefect: the test
harness is a fixture of tests/integration/conftest.py, set up only where a flow runs.

Every test process (the main one, or each pytest-xdist worker) gets a Prefect home of its
own before any product module imports Prefect, so that importing a flow module never
touches ~/.prefect and two workers never share a profile, a database or a results store."""

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="thb-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)


# ---------------------------------------------------------------- parallel runs (pytest-xdist)
#
# pyproject.toml runs the suite with `-n auto --dist loadgroup --no-loadscope-reorder`: the
# tests of one group run in one worker, in collection order; every other test is scheduled on
# its own. Below, (1) the tests that use an expensive session fixture get the group of that
# fixture (xdist_group mark), so that it is built in one worker only; modules whose
# module-scoped fixtures are expensive carry a group mark themselves; and (2) the collection
# is ordered longest work first, so that the long groups start at once and the many short
# tests fill in at the end (a long group handed out last would run alone while the other
# worker idles).
#
# xdist 3.8 passes a test's group to the controller by appending "@group" to its node id,
# which pytest 9.2's structured node ids silently ignore (pytest-xdist issue #1386): every
# test would be scheduled on its own and each worker would build every expensive fixture.
# So each worker also writes the groups it collected to a file the controller's scheduler
# reads (GroupFileScheduling), which works with or without that fix.

SESSION_GROUPS = {  # a session fixture → the group of every test that uses it
    "ingested": "released",  # `released` is the ingested directory, released in place
    "released": "released",
    "realistic": "realistic",
}
LONGEST_FIRST = [  # groups, longest first (--durations on 2 cores)
    "released",
    "crash-ingest",
    "crash-release",
    "coverage-worlds",
    "audit-path",
    "readers",
    "no-leaks",
    "realistic",
    "simulator",
    "hostile",
]
GROUPS_FILES = "thb_xdist_groups"  # workerinput key: the folder where workers write their groups


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

    workerinput = getattr(config, "workerinput", {})
    if GROUPS_FILES in workerinput:  # an xdist worker: tell the controller the groups
        groups = {item.nodeid: g for item in items if (g := _group(item))}
        path = Path(workerinput[GROUPS_FILES]) / f"{workerinput['workerid']}.json"
        path.with_suffix(".tmp").write_text(json.dumps(groups), encoding="utf-8")
        path.with_suffix(".tmp").replace(path)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist's controller, for each worker it starts: where to write the groups."""
    config = node.config
    if not hasattr(config, "_thb_groups_dir"):
        config._thb_groups_dir = tempfile.mkdtemp(prefix="thb-xdist-groups-")
        atexit.register(shutil.rmtree, config._thb_groups_dir, ignore_errors=True)
    node.workerinput[GROUPS_FILES] = config._thb_groups_dir


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class GroupFileScheduling(LoadGroupScheduling):
        """LoadGroupScheduling, with the groups the workers wrote (see above)."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if scope != nodeid:  # xdist's own "@group" made it through
                return scope
            if self.groups is None:  # every worker has collected: their files are written
                self.groups = {}
                for f in Path(getattr(config, "_thb_groups_dir", "/nonexistent")).glob("*.json"):
                    self.groups.update(json.loads(f.read_text(encoding="utf-8")))
            return self.groups.get(nodeid, nodeid)

    return GroupFileScheduling(config, log)
