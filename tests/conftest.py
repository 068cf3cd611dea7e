"""Shared by every test, unit and integration alike. Nothing here starts Prefect: the test
harness is a fixture of tests/integration/conftest.py, set up only where a flow runs.

Every test process (the main one, or each pytest-xdist worker) gets a Prefect home of its
own before any product module imports Prefect, so that importing a flow module never
touches ~/.prefect and two workers never share a profile, a database or a results store."""

import atexit
import os
import shutil
import tempfile

_PREFECT_HOME = tempfile.mkdtemp(prefix="thb-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
