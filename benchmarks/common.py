"""Helpers the benchmarks share: world sizes, a quiet Prefect, and child processes whose peak
memory is their own.

>>> parse_rows("10k"), parse_rows("1M"), parse_rows("2500")
(10000, 1000000, 2500)
"""

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROWS_AT_SCALE_1 = 604_000  # rows the simulator writes at --scale 1 (asylum screenings are ~99 %)


def parse_rows(text: str) -> int:
    """'10k', '1M', '1.5M' or a plain number → rows."""
    text = text.strip().upper().replace("_", "").replace(",", "")
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return round(float(text.rstrip("KM")) * factor)


def label(rows: int) -> str:
    """1000000 → '1M', 10000 → '10k'."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if rows >= size and rows % size == 0:
            return f"{rows // size}{unit}"
    return f"{rows:,}"


def prefect_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked child: Prefect's local API with its database in
    workdir (kept between runs, as a data steward's would be), no telemetry, quiet logs."""
    env = os.environ.copy()
    env.setdefault("PREFECT_HOME", str(workdir / "prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    return env | extra


def local_prefect(workdir: Path) -> None:
    """This process's Prefect, as `prefect_env` sets up a child's: its local API with its
    database in workdir, quiet, and time to start (as thb gives it)."""
    env = prefect_env(workdir)
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.update(env)


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants now (Linux /proc), in MiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def run_measured(
    cmd: list[str], env: dict[str, str], log: Path, heartbeat: Callable[[float, float], None], every: float = 15.0
) -> dict:
    """Run cmd to completion with its output in `log`; return its wall time, its peak RSS
    (the largest single process of its tree, from the kernel: getrusage of the reaped
    child) and the sampled peak of its whole tree. `heartbeat(elapsed_s, tree_mib)` is
    called every `every` seconds. Raises CalledProcessError (log attached) on failure."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        tree_peak, next_beat = 0.0, t0 + every
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree_peak = max(tree_peak, tree_rss_mib(proc.pid))
            if time.perf_counter() >= next_beat:
                heartbeat(time.perf_counter() - t0, tree_peak)
                next_beat += every
            time.sleep(0.2)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, output=log.read_text(errors="replace")[-4000:])
    return {
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "tree_peak_mib": max(tree_peak, usage.ru_maxrss / 1024),
    }
