"""The `thb` command line (DESIGN.md). Data lives under ./data, or $THB_DATA_DIR."""

import contextlib
import os
from pathlib import Path

import typer
from rich.table import Table

from thb.console import console, rich_progress
from thb.settings import Settings

app = typer.Typer(
    help="THB Observatory: privacy-preserving statistics on trafficking in human beings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
contracts = typer.Typer(help="Data contracts (Great Expectations suites).", no_args_is_help=True)
app.add_typer(contracts, name="contracts")


def _quiet_prefect(verbose: bool) -> None:
    """Run flows in-process with Prefect's ephemeral API: no server to start, no telemetry."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")


@contextlib.contextmanager
def _clear_errors(verbose: bool):
    """A failure outside any one file (the warehouse locked, the disk full) ends with one
    clear line, not a traceback; files already loaded stay loaded."""
    import duckdb

    try:
        yield
    except duckdb.IOException as exc:
        if verbose:
            raise
        locked = "lock" in str(exc).lower()
        hint = "another process has the warehouse open" if locked else "the warehouse cannot be written"
        console.print(f"[red]error:[/] {hint} ({Settings().warehouse}). Nothing was lost; run again when it is free.")
        raise typer.Exit(2) from None
    except Exception as exc:
        if verbose:
            raise
        console.print(
            f"[red]error:[/] the run stopped ({type(exc).__name__}); run again with --verbose for details. "
            "Files already loaded stay loaded; the others are taken next time."
        )
        raise typer.Exit(1) from None


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory for landing/ (exports) and truth/ (ground truth)."),
    seed: int = typer.Option(2025, help="Seed of the simulated world."),
    scale: float = typer.Option(1.0, min=0.001, help="Multiplies every volume (1 ≈ 0.5 M rows)."),
):
    """Write realistic provider exports to OUT/landing/ and the ground truth to OUT/truth/."""
    from pipelines.progress import reporting, step
    from simulator import simulate as run

    with rich_progress() as reporter, reporting(reporter), step("simulating countries", 8) as advance:
        summary = run(out, seed=seed, scale=scale, progress=advance)
    table = Table(title=f"Simulated world (seed {seed}, scale {scale})")
    for col in ("country", "victims", "seen", "rows", "files"):
        table.add_column(col, justify="right")
    for country, s in summary["countries"].items():
        table.add_row(country, *(f"{s[k]:,}" for k in ("victims", "seen", "rows", "files")))
    console.print(table)
    console.print(
        f"Exports in [bold]{out / 'landing'}[/], ground truth in [bold]{out / 'truth'}[/] ({summary['rows']:,} rows)."
    )


@app.command()
def ingest(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs.")):
    """Take every new file in landing/: validate, load, harmonise, link."""
    _quiet_prefect(verbose)
    from pipelines.ingest import ingest as flow
    from pipelines.progress import reporting
    from pipelines.warehouse import connect

    settings = Settings()
    console.print(f"Ingesting [bold]{settings.landing}[/] (starting Prefect's local API)…")
    with _clear_errors(verbose):
        connect(settings.warehouse).close()  # fail fast, before Prefect, if it is locked
        with rich_progress() as reporter, reporting(reporter):
            summary = flow(settings.data_dir)
    table = Table(title="Ingest: files, then records and persons, by country")
    cols = ("loaded", "quarantined", "unchanged", "case", "screening", "persons")
    heads = ("loaded", "quarantined", "unchanged", "cases", "screenings", "persons")
    table.add_column("country")
    for h in heads:
        table.add_column(h, justify="right")
    for country, row in summary["by_country"].items():
        table.add_row(country, *(f"{row[c]:,}" for c in cols))
    table.add_row("total", *(f"{summary['total'][c]:,}" for c in cols), style="bold")
    console.print(table)
    console.print(f"Warehouse: [bold]{summary['warehouse']}[/]")
    for q in summary["quarantined"]:
        console.print(f"[yellow]quarantined[/] {q['file']}: {q['reason']}\n  report: {q['report']}")


@contracts.command("build")
def contracts_build():
    """Generate the GX suites from the schema, code lists and connector mappings."""
    from connectors.mapping import load_sources
    from data_contracts.build import write_suites

    settings = Settings()
    paths = write_suites(load_sources(settings.connectors_dir), settings.contracts_dir)
    console.print(f"Wrote {len(paths)} suites to [bold]{settings.contracts_dir}[/]")


if __name__ == "__main__":
    app()
