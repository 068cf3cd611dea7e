"""The `thb` command line without running anything: its help."""

from typer.testing import CliRunner

from thb.cli import app


def test_help_lists_the_commands():
    out = CliRunner().invoke(app, ["--help"]).output
    for command in ("simulate", "ingest", "contracts"):
        assert command in out
