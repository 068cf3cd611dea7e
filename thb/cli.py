"""The `thb` command line (DESIGN.md). Data lives under ./data, or $THB_DATA_DIR."""

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from thb.console import console, rich_progress
from thb.errors import BudgetError, ThbError, UserInputError
from thb.periods import Period
from thb.settings import Settings

if TYPE_CHECKING:
    from pipelines.ingest import IngestSummary
    from pipelines.release import ReleaseSummary

app = typer.Typer(
    help="THB Observatory: privacy-preserving statistics on trafficking in human beings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
contracts = typer.Typer(help="Data contracts (Great Expectations suites).", no_args_is_help=True)
app.add_typer(contracts, name="contracts")
pipeline_app = typer.Typer(help="The whole pipeline.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
provider_app = typer.Typer(help="The provider kit: run on a provider's own machine.", no_args_is_help=True)
app.add_typer(provider_app, name="provider")
linkage_app = typer.Typer(help="Record linkage on identity encodings.", no_args_is_help=True)
app.add_typer(linkage_app, name="linkage")
mse_app = typer.Typer(help="Multiple systems estimation: how many victims no list saw.", no_args_is_help=True)
app.add_typer(mse_app, name="mse")


def _quiet_prefect(verbose: bool) -> None:
    """Run flows in-process with Prefect's ephemeral API: no server to start, no telemetry.
    The local API starts at once, in a thread, while the pipeline's modules import: the
    first flow finds it running (its start-up, 5-10 s, otherwise adds to theirs, 3-4 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return  # a configured server

    def start() -> None:
        from prefect.server.api.server import SubprocessASGIServer

        with contextlib.suppress(Exception):  # the first flow starts it again, and says why it fails
            SubprocessASGIServer().start()  # the instance get_client() uses; stopped at exit

    global _prefect_starting
    _prefect_starting = threading.Thread(target=start, name="prefect-api")  # not a daemon: no half-started server
    _prefect_starting.start()


_prefect_starting: threading.Thread | None = None


def _prefect_ready() -> None:
    """Wait for the local API started by _quiet_prefect (a flow must not find it half-up)."""
    if _prefect_starting is not None:
        _prefect_starting.join()


@contextlib.contextmanager
def _our_errors() -> Iterator[None]:
    """Our own errors (a `ThbError`) end with one clear line and the exit code of their
    class, not a traceback: the one place where classes map to exit codes."""
    try:
        yield
    except ThbError as exc:
        word = "refused" if isinstance(exc, BudgetError) else "error"
        console.print(f"[red]{word}:[/] {escape(str(exc))}")
        raise typer.Exit(exc.exit_code) from None


@contextlib.contextmanager
def _clear_errors(verbose: bool) -> Iterator[None]:
    """For the commands that write the warehouse: our errors as `_our_errors` says, and a
    failure outside any one file (the warehouse locked, the disk full) also ends with one
    clear line; files already loaded stay loaded."""
    import duckdb

    with _our_errors():
        try:
            yield
        except ThbError:
            raise
        except duckdb.IOException as exc:
            if verbose:
                raise
            locked = "lock" in str(exc).lower()
            hint = "another process has the warehouse open" if locked else "the warehouse cannot be written"
            where = Settings().warehouse
            console.print(f"[red]error:[/] {hint} ({where}). Nothing was lost; run again when it is free.")
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
    out: Path = typer.Option(..., "--out", help="Directory for providers/, secrets/, landing/ and truth/."),
    seed: int = typer.Option(2025, help="Seed of the simulated world."),
    scale: float = typer.Option(1.0, min=0.001, help="Multiplies every volume (1 ≈ 0.5 M rows)."),
    kit: bool = typer.Option(True, help="Run the provider kit into OUT/landing/ (--no-kit: run it yourself)."),
):
    """Write providers' internal exports (with identities) to OUT/providers/, their linkage
    secrets to OUT/secrets/, the ground truth to OUT/truth/ and, with the provider kit,
    their anonymised exports to OUT/landing/."""
    from pipelines.progress import reporting, step
    from simulator import simulate as run

    with (
        _our_errors(),
        rich_progress() as reporter,
        reporting(reporter),
        step("simulating countries", 8) as advance,
    ):
        summary = run(out, seed=seed, scale=scale, progress=advance, kit=kit)
    table = Table(title=f"Simulated world (seed {seed}, scale {scale})")
    for col in ("country", "victims", "seen", "rows", "files"):
        table.add_column(col, justify="right")
    for country, s in summary.countries.items():
        table.add_row(country, *(f"{n:,}" for n in (s.victims, s.seen, s.rows, s.files)))
    console.print(table)
    where = f"anonymised exports in [bold]{out / 'landing'}[/]" if kit else "no anonymised exports yet (--no-kit)"
    console.print(
        f"{summary.moved_on:,} victims recorded in a transit country moved on to a destination "
        "(world.yaml `onward`): one human, a victim in each."
    )
    console.print(
        f"Internal exports in [bold]{out / 'providers'}[/], {where}, ground truth in [bold]{out / 'truth'}[/] "
        f"({summary.rows:,} rows)."
    )


@provider_app.command("export")
def provider_export(
    paths: list[Path] = typer.Argument(..., help="Internal export files, or folders to search for them."),
    outbox: Path = typer.Option(..., "--outbox", help="Where the anonymised exports go: <outbox>/<CC>/<source_id>/."),
    secret: Path | None = typer.Option(
        None, "--secret", help="The linkage secret file (or a folder of <CC>.key files); default: THB_LINKAGE_SECRET."
    ),
    source: str | None = typer.Option(None, "--source", help="The source_id, if the files' folder does not say."),
):
    """Anonymise internal exports: encode names and dates of birth with the country's linkage
    secret (and key asylum applicant numbers with it), drop every identifier and free-text
    column, check the result against the warehouse's contracts, and write it to the outbox
    with a receipt. Nothing leaves unless it passes; names, dates of birth, applicant numbers
    and the secret never do."""
    from connectors.mapping import load_sources
    from pipelines.progress import reporting
    from provider.kit import export, internal_exports, secrets

    with _our_errors(), rich_progress() as reporter, reporting(reporter):
        sources = load_sources()
        files = [f for p in paths for f in internal_exports(p, sources)]
        if not files:
            raise UserInputError("no internal export found (file names must match a registered source's pattern)")
        receipts, refused = export(files, outbox, secrets(secret), sources, source)
    table = Table(title="Provider kit: anonymised exports, by source")
    for col in ("source", "files", "records", "encoded", "no identifiers", "applicant keys"):
        table.add_column(col, justify="right")
    by_source: dict[str, list[int]] = {}
    for r in receipts:
        row = by_source.setdefault(r.source_id, [0, 0, 0, 0, 0])
        for i, n in enumerate((1, r.records, r.encoded, r.without_identifiers, r.applicant_keys)):
            row[i] += n
    for source_id, row in sorted(by_source.items()):
        table.add_row(source_id, *(f"{n:,}" for n in row))
    console.print(table)
    console.print(f"Outbox: [bold]{outbox}[/]; a receipt sits next to each internal export (*.receipt.json).")
    for refusal in refused:
        console.print(f"[red]refused:[/] {escape(str(refusal))}")
    if refused:
        console.print("Nothing of the refused files was written to the outbox.")
        raise typer.Exit(2)


@linkage_app.command("quality")
def linkage_quality(
    truth: Path = typer.Argument(..., help="The simulated world's truth/ folder."),
):
    """How well linkage found the simulated persons: pairwise precision, recall and F1 by
    country; and how many privacy units a human is, by the countries that recorded them and
    the linked persons linkage split them into (simulated data only; private figures for the
    data steward)."""
    import duckdb

    from simulator.quality import linkage_quality as measure
    from simulator.quality import privacy_units

    with _our_errors():
        where = Settings().warehouse
        if not where.exists():
            raise UserInputError(f"no warehouse at {where}: run `thb ingest` first")
        with duckdb.connect(str(where), read_only=True) as con:
            quality = measure(con, truth)
            units = privacy_units(truth, con)
    table = Table(title="Linkage against the simulated truth (pairs of records)")
    for col in ("country", "records", "true pairs", "linked pairs", "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    for cc, q in quality.items():
        name = "all" if cc == "_T" else cc
        table.add_row(
            name,
            f"{q.records:,}",
            f"{q.true_pairs:,}",
            f"{q.linked_pairs:,}",
            *(f"{v:.3f}" for v in (q.precision, q.recall, q.f1)),
        )
    console.print(table)
    console.print(
        f"Humans recorded in k countries (k privacy units each): {_by_k(units.countries)} "
        f"of {units.humans:,} recorded humans."
    )
    console.print(
        f"Persons within a country split by linkage (k units each): {units.split_share:.1%} of "
        f"{units.persons:,} into 2 or more ({_by_k({k: v for k, v in units.split.items() if k >= 2}) or 'none'})."
    )


def _by_k(shares: dict[int, float]) -> str:
    """'1: 97.6%, 2: 2.4%' from {k: share}."""
    return ", ".join(f"{k}: {share:.1%}" for k, share in shares.items())


@app.command()
def ingest(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs.")):
    """Take every new file in landing/: validate, load, harmonise, link."""
    _quiet_prefect(verbose)
    from pipelines.ingest import ingest as flow
    from pipelines.progress import reporting
    from pipelines.warehouse import connect

    settings = Settings()
    console.print(f"Ingesting [bold]{escape(str(settings.landing))}[/] (starting Prefect's local API)…")
    with _clear_errors(verbose):
        connect(settings.warehouse).close()  # fail fast, before Prefect, if it is locked
        _prefect_ready()
        with rich_progress() as reporter, reporting(reporter):
            summary = flow(settings.data_dir)
    _print_ingest(summary)


def _print_ingest(summary: "IngestSummary") -> None:
    table = Table(title="Ingest: files, then records and persons, by country")
    cols = ("loaded", "quarantined", "unchanged", "case", "screening", "persons")
    heads = ("loaded", "quarantined", "unchanged", "cases", "screenings", "persons")
    table.add_column("country")
    for h in heads:
        table.add_column(h, justify="right")
    for country, row in summary.by_country.items():
        table.add_row(country, *(f"{row[c]:,}" for c in cols))
    table.add_row("total", *(f"{summary.total[c]:,}" for c in cols), style="bold")
    console.print(table)
    console.print(f"Warehouse: [bold]{escape(summary.warehouse)}[/]")
    for q in summary.quarantined:
        console.print(
            f"[yellow]quarantined[/] {escape(q.file)}: {escape(q.reason or '')}\n  report: {escape(q.report or '')}"
        )
    for rel in summary.quarantined_earlier:
        console.print(f"[yellow]still in landing[/], quarantined earlier with the same bytes: {escape(rel)}")


@app.command()
def release(
    period: str = typer.Argument(..., help="The quarter, e.g. 2025-Q3."),
    revise: bool = typer.Option(False, "--revise", help="Publish a new, charged revision with late records."),
    preview: bool = typer.Option(False, "--preview", help="Show the expected interval widths; spend nothing."),
    force: bool = typer.Option(False, "--force", help="Release a quarter before it is complete (its grace period)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
):
    """The DP release of one quarter, published atomically (or the stored one, if published)."""
    if preview:
        _preview()
        return
    with _clear_errors(verbose):
        Period.parse(period)  # a malformed period is refused before Prefect starts
        _quiet_prefect(verbose)
        from pipelines.release import release as flow
        from pipelines.warehouse import connect

        settings = Settings()
        connect(settings.warehouse).close()
        _prefect_ready()
        summary = flow(period, revise, settings.data_dir, force)
    _print_release(summary)


def _print_release(s: "ReleaseSummary") -> None:
    noise = "noise drawn by OpenDP" if s.noise_drawn else "no noise drawn"
    console.print(
        f"[bold]{s.release_id}[/] {s.status} ({noise}); ρ = {s.rho:.4g}, ε = {s.epsilon:.3g}\n  {escape(s.folder)}"
    )


def _preview() -> None:
    from dp.measure import marginal_name, plan
    from dp.postprocess import expected_half_widths
    from dp.spec import release_spec

    spec = release_spec()
    b = spec.budget
    console.print(
        f"A release spends ρ = {b.release_rho:g} ({', '.join(f'{k} {v:.0%}' for k, v in b.shares.items())}). "
        f"Expected {spec.interval_level:.0%} interval of one country's cell: value ± half-width "
        "(the route total `_T` adds the eight countries' noise: × √8)."
    )
    for name in spec.datasets:
        scales = plan(spec, name)
        table = Table(title=f"{name}: tables and their expected interval half-width")
        for col in ("table", "cells", "measured σ", "± half-width"):
            table.add_column(col, justify="right" if col != "table" else "left")
        alg_cells = spec.datasets[name].sizes
        for m, half in expected_half_widths(spec, name, scales).items():
            cells = 1
            for a in m:
                cells *= alg_cells[a]
            table.add_row(marginal_name(m), str(cells), f"{scales[m]:.2f}" if m in scales else "derived", f"{half:.1f}")
        console.print(table)


@app.command("ledger")
def ledger_cmd(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """The privacy budget spent and left per quarter and year, and the promise to each person per year."""
    import duckdb

    from dp import ledger
    from dp.spec import release_spec

    settings = Settings()
    with _our_errors():
        spec = release_spec()
    if not settings.warehouse.exists():
        rows, promises = [], []
    else:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
        try:
            known = {
                t
                for (t,) in con.sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ledger'"
                ).fetchall()
            }
            rows = ledger.budget_table(con, spec) if "releases" in known else []
            promises = ledger.promises(con, spec) if "releases" in known else []
        finally:
            con.close()
    if as_json:
        print(
            json.dumps(
                {
                    "caps": {
                        "rho_per_quarter": spec.budget.rho_per_quarter,
                        "rho_per_year": spec.budget.rho_per_year,
                        "delta": spec.budget.delta,
                    },
                    "scopes": [dataclasses.asdict(r) for r in rows],
                    "per_person": [dataclasses.asdict(p) for p in promises],
                },
                indent=1,
            )
        )
        return
    table = Table(title=f"Privacy ledger (zCDP ρ; ε at δ = {spec.budget.delta:g})")
    for col in ("scope", "releases", "ρ spent", "ε spent", "ρ left (quarter)", "ρ left (year)"):
        table.add_column(col, justify="right" if col not in ("scope", "releases") else "left")
    for r in rows:
        table.add_row(
            r.scope,
            ", ".join(r.releases),
            f"{r.rho_spent:.4g}",
            f"{r.epsilon_spent:.3g}",
            f"{r.rho_left_quarter:.4g}" if r.rho_left_quarter is not None else "—",
            f"{r.rho_left_year:.4g}",
        )
    console.print(table if rows else "Nothing has been released yet.")
    if promises:
        person = Table(title="The promise to each person: the most one person's data has cost in a year")
        for col in ("year", "ρ", f"ε (δ = {spec.budget.delta:g})", "cap ρ", "cap ε"):
            person.add_column(col, justify="right")
        for p in promises:
            person.add_row(str(p.year), f"{p.rho:.4g}", f"{p.epsilon:.3g}", f"{p.rho_cap:g}", f"{p.epsilon_cap:.3g}")
        console.print(person)
        console.print(
            "One person in one reporting country, over every dataset and revision. A human recorded in k "
            "countries carries up to k times this ρ; one that linkage split into k persons, up to k² times."
        )


@pipeline_app.command("run")
def pipeline_run(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs.")):
    """Ingest, then release every period the public calendar has opened and not yet released. No server needed."""
    _quiet_prefect(verbose)
    from pipelines.progress import reporting
    from pipelines.release import pipeline
    from pipelines.warehouse import connect

    settings = Settings()
    console.print(f"Pipeline on [bold]{escape(str(settings.data_dir))}[/] (starting Prefect's local API)…")
    with _clear_errors(verbose):
        connect(settings.warehouse).close()
        _prefect_ready()
        with rich_progress() as reporter, reporting(reporter):
            summary = pipeline(settings.data_dir)
    _print_ingest(summary.ingest)
    for r in summary.releases:
        _print_release(r)
    if not summary.releases:
        console.print("No period of the release calendar is waiting for a release.")
    console.print(f"Release database: [bold]{escape(str(settings.release_dir / 'thb_release.duckdb'))}[/]")


@app.command()
def dashboard(
    port: int = typer.Option(8050, help="Port on 127.0.0.1."),
    release: Path = typer.Option(
        None, help="The release database (default: $THB_DATA_DIR/release/thb_release.duckdb)."
    ),
    debug: bool = typer.Option(False, help="Dash's debug mode (reloads on code changes)."),
):
    """Serve the rapporteurs' dashboard on the public release, read-only."""
    from dashboards.app import create_app, default_release_path

    path = release or default_release_path()
    if not path.exists():
        console.print(
            f"[yellow]note:[/] no release at {escape(str(path))} yet; the dashboard says so until one is published."
        )
    console.print(f"Dashboard on [bold]http://127.0.0.1:{port}/[/] (release: {escape(str(path))}); Ctrl+C stops it.")
    create_app(path).run(host="127.0.0.1", port=port, debug=debug)


@mse_app.command("estimate")
def mse_estimate(
    file: Path = typer.Argument(..., help="CSV: one 0/1 column per list, then the count."),
    pthresh: float = typer.Option(0.02, help="Add a two-list interaction while its p-value is below this."),
    nboot: int = typer.Option(1000, min=0, help="Bootstrap resamples for the BCa interval (0: none)."),
    seed: int = typer.Option(1234, help="Seed of the bootstrap resampling."),
    include: list[str] = typer.Option(
        [], help="A:B — lists known to depend on each other (a referral pathway): in every model. Repeatable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
):
    """Estimate the total population (seen and unseen) from a capture-history table."""
    from dp.mse import CaptureData, CaptureDataError, Estimator

    with _our_errors():
        pairs = [_list_pair(p) for p in include]
        try:
            estimator = Estimator(CaptureData.read(file), pthresh, pairs)
        except CaptureDataError as exc:
            raise CaptureDataError(f"{file}: {exc}") from None
    result = estimator.bootstrap(nboot, seed) if nboot else estimator.point()
    if as_json:
        out = result.as_dict()
        print(
            json.dumps(
                {k: out[k] for k in ("observed", "estimate", "ci95", "terms", "pthresh", "nboot")}
                | {"empty_overlaps": out["empty_overlaps"]}
            )
        )
        return
    table = Table(title=f"Multiple systems estimation: {escape(file.name)}")
    for col in ("lists", "observed", "estimate", "95 % BCa interval"):
        table.add_column(col, justify="right")
    ci = f"{result.ci95[0]:,.0f} – {result.ci95[1]:,.0f}" if result.ci95 else "—"
    table.add_row(", ".join(estimator.data.lists), f"{result.observed:,.0f}", f"{result.estimate:,.0f}", ci)
    console.print(table)
    console.print(
        "two-list interactions: "
        + (", ".join(result.terms) or "none")
        + (f"; empty overlaps (structural zeros): {', '.join(result.empty_overlaps)}" if result.empty_overlaps else "")
        + f"  (p < {pthresh:g}; {nboot} resamples, seed {seed})"
    )


def _list_pair(text: str) -> tuple[str, str]:
    a, sep, b = text.partition(":")
    if not (a and sep and b) or ":" in b:
        raise UserInputError("--include takes two list names joined by ':', e.g. NGO:POLICE")
    return a, b


@contracts.command("build")
def contracts_build():
    """Generate the GX suites from the schema, code lists and connector mappings."""
    from connectors.mapping import load_sources
    from data_contracts.build import write_suites

    settings = Settings()
    with _our_errors():
        paths = write_suites(load_sources(settings.connectors_dir), settings.contracts_dir)
    console.print(f"Wrote {len(paths)} suites to [bold]{escape(str(settings.contracts_dir))}[/]")


@contracts.command("schema")
def contracts_schema(
    out: Annotated[Path | None, typer.Option("--out", help="Write the schema here (default: print it).")] = None,
):
    """The JSON Schema of a connector mapping, for editors (committed as connectors/mapping.schema.json)."""
    from connectors.mapping import mapping_json_schema

    text = mapping_json_schema()
    if out is None:
        print(text, end="")
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"Wrote the mapping schema to [bold]{escape(str(out))}[/]")


if __name__ == "__main__":
    app()
