"""Run a `thb` command and kill it with SIGKILL at a chosen point of the real code.

    python -m tests.crashpoint pipelines.ingest:load#3 before -- ingest
    python -m tests.crashpoint dp.ledger:record after -- release 2024-Q2

`module:function#n` names the function as the caller looks it up, and the call (default the
first) at which the process dies: `before` the call runs, or `after` it returned. Nothing
else changes: no cleanup, no atexit, no flushing, as when the machine loses power.
"""

import importlib
import os
import signal
import sys


def arm(target: str, when: str) -> None:
    where, _, nth = target.partition("#")
    module_name, name = where.split(":")
    module = importlib.import_module(module_name)
    original, due = getattr(module, name), int(nth or 1)
    calls = 0

    def dying(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == due and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls == due:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, dying)


if __name__ == "__main__":
    target, when, separator, *command = sys.argv[1:]
    assert when in ("before", "after"), __doc__
    assert separator == "--", __doc__
    arm(target, when)
    from thb.cli import app

    app(command)
