"""The `thb` command line, as a user runs it."""

import duckdb
import pytest
from typer.testing import CliRunner

from thb.cli import app

# `thb ingest` runs its flow in this process, on the harness's API (without one, the command
# would start a Prefect server of its own)
pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_simulate_then_ingest(tmp_path, monkeypatch):
    monkeypatch.setenv("THB_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    sim = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--seed", "4", "--scale", "0.02"])
    assert sim.exit_code == 0, sim.output
    assert "ground truth" in sim.output
    assert "moved on to a destination" in " ".join(sim.output.split())
    assert (tmp_path / "truth/victims.parquet").exists()
    bad = tmp_path / "landing/DE/DE-POL-BKA/bka_lagebild_broken.csv"
    bad.write_bytes(b"\x00\x01binary")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "total" in result.output
    assert str(tmp_path / "warehouse.duckdb") in result.output.replace("\n", "")
    assert "quarantined" in result.output
    assert "NUL bytes" in result.output
    again = runner.invoke(app, ["ingest"])
    assert again.exit_code == 0
    assert "Traceback" not in again.output


def test_a_locked_warehouse_gets_a_clear_error(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("THB_DATA_DIR", str(tmp_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(tmp_path / 'warehouse.duckdb')!r}); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(app, ["ingest"])
    finally:
        holder.kill()
    assert result.exit_code == 2
    assert "another process has the warehouse open" in result.output
    assert "Traceback" not in result.output


def test_file_names_are_printed_as_text_not_markup(tmp_path, monkeypatch):
    monkeypatch.setenv("THB_DATA_DIR", str(tmp_path))
    (tmp_path / "landing/DE/DE-POL-BKA").mkdir(parents=True)
    (tmp_path / "landing/DE/DE-POL-BKA/[red]odd [bold]name.csv").write_text("a;b\n1;2\n")
    result = CliRunner().invoke(app, ["ingest"])
    assert result.exit_code == 0, result.output
    assert "[red]odd [bold]name.csv" in result.output.replace("\n", "")


def test_linkage_quality_says_how_many_privacy_units_a_human_is(world, ingested, monkeypatch):
    """Beside the pairwise table, the shares of humans recorded in k countries and of persons
    that linkage split, as simulator.quality measures them."""
    from simulator.quality import privacy_units

    monkeypatch.setenv("THB_DATA_DIR", str(ingested))
    result = CliRunner().invoke(app, ["linkage", "quality", str(world / "truth")])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # as the terminal's width wrapped it
    with duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True) as con:
        units = privacy_units(world / "truth", con)
    assert units.countries.get(2, 0) > 0
    assert (
        f"Humans recorded in k countries (k privacy units each): 1: {units.countries[1]:.1%}, "
        f"2: {units.countries[2]:.1%} of {units.humans:,} recorded humans." in printed
    )
    assert (
        f"Persons within a country split by linkage (k units each): {units.split_share:.1%} of {units.persons:,}"
        in printed
    )
