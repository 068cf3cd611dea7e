"""The provider kit and the linkage on its encodings, on a small simulated world: what leaves
a provider holds no identifier, the kit refuses what could leak, linkage finds the persons
of the world's truth, and an attacker without the secret cannot match names to encodings."""

import csv
import io
import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from connectors.mapping import NAME_IDENTIFIERS, FileSpec, SourceMapping, load_sources
from pipelines.link import linkage
from provider.encode import Identity, decode, encode, parts
from provider.kit import KitRefused, export, internal_exports, route, secrets
from simulator.identities import pools
from simulator.quality import linkage_quality, privacy_units

SOURCES = load_sources()


def internal_values(world, columns: Callable[[SourceMapping, FileSpec], list[str]]) -> set[tuple[str, str]]:
    """(country, value) of every cell of the providers' internal exports in the columns
    `columns(source, spec)` names."""
    from connectors.read import read_export

    values: set[tuple[str, str]] = set()
    with duckdb.connect() as con, tempfile.TemporaryDirectory() as scratch:  # the shared world stays as it is
        for path in internal_exports(world / "providers", SOURCES):
            source, spec = route(path, SOURCES)
            if wanted := columns(source, spec):
                table = read_export(con, path, spec, Path(scratch), source.internal_columns(spec)).to_pandas()
                values |= {(source.country, v) for column in wanted for v in table[column].dropna()}
    return values


def internal_identifiers(world) -> set[str]:
    """Every name, date of birth and note in the providers' internal case exports."""

    def names(source: SourceMapping, spec: FileSpec) -> list[str]:
        ids = source.identifier_columns(spec)
        return [ids[f] for f in NAME_IDENTIFIERS if f in ids] + spec.drop

    return {v for _, v in internal_values(world, names) if len(v) > 3}


def applicant_numbers(world) -> set[tuple[str, str]]:
    """(country, number) of every applicant number in the asylum services' internal exports."""
    return internal_values(
        world, lambda source, spec: [source.column(spec, f) for f in spec.identifiers if f == "applicant_number"]
    )


def varchar_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """Every text column of the warehouse's data (not the ledger's)."""
    return con.sql(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE data_type = 'VARCHAR' AND table_schema IN ('raw', 'harmonised', 'linked', 'landing')"
    ).fetchall()


def test_the_simulated_providers_hold_identities_in_their_own_scripts(world):
    names = internal_identifiers(world)
    assert any(any("α" <= c <= "ω" for c in n) for n in names)  # Greek sources
    assert any(any("а" <= c <= "я" for c in n) for n in names)  # Cyrillic sources
    assert not (world / "landing" / "providers").exists()
    assert (world / "truth" / "records.parquet").exists()


def test_no_identifier_reaches_landing_or_the_warehouse(world, ingested):
    names = internal_identifiers(world)
    assert len(names) > 100
    with duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True) as con:
        for schema, table, column in varchar_columns(con):
            hits = con.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" IN (SELECT unnest(?))',  # noqa: S608
                [sorted(names)],
            ).fetchall()[0][0]
            assert hits == 0, f"{schema}.{table}.{column}"
    landed = b"".join(p.read_bytes() for p in (world / "landing").rglob("*.csv"))
    text = landed.decode("utf-8", errors="ignore")
    assert not [n for n in sorted(names)[:500] if f";{n};" in text or f",{n}," in text]


def test_no_applicant_number_reaches_landing_or_the_warehouse(world, ingested):
    """The asylum services' applicant numbers (registration numbers: personal data) stay with
    them; what arrives is one applicant key per number and country (so the warehouse counts
    each applicant once), in no cell the number was in."""
    numbers = applicant_numbers(world)
    raw = sorted({n for _, n in numbers})
    assert len(raw) > 1000
    with duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True) as con:
        for schema, table, column in varchar_columns(con):
            hits = con.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" IN (SELECT unnest(?))',  # noqa: S608
                [raw],
            ).fetchall()[0][0]
            assert hits == 0, f"{schema}.{table}.{column}"
        keys = dict(
            con.sql(
                "SELECT reporting_country, count(DISTINCT applicant_key) FROM harmonised.screenings GROUP BY 1"
            ).fetchall()
        )
    assert keys == dict(Counter(country for country, _ in numbers))
    screenings = {s.source_id: spec for s in SOURCES.values() for spec in s.files if spec.kind == "screening"}
    landed = [p for p in (world / "landing").rglob("*") if p.parent.name in screenings]
    landed = [p for p in landed if screenings[p.parent.name].matches(p.name)]
    assert {p.suffix for p in landed} == {".csv", ".jsonl"}
    receipts = list((world / "providers").rglob("*.receipt.json"))
    cells: set[str] = set()
    for p in landed:  # every column name and cell of the asylum services' screening exports
        spec = screenings[p.parent.name]
        text = p.read_bytes().decode(spec.encoding)
        if spec.format == "jsonl":  # JSON escapes the slash: read the values
            cells |= {str(c) for line in text.splitlines() for r in [json.loads(line)] for c in [*r, *r.values()]}
        else:
            cells |= {c for row in csv.reader(io.StringIO(text), delimiter=spec.delimiter) for c in row}
    for p in receipts:  # every string of the kit's receipts (json.dumps leaves slashes alone)
        cells |= set(re.findall(r'"([^"]*)"', p.read_text(encoding="utf-8")))
    assert {"applicant_key", "applicant_keys"} <= cells  # the scan reads column names and receipts
    assert not cells & set(raw)


def test_the_kit_refuses_a_name_column_left_unmapped_and_writes_nothing(world, tmp_path):
    internal = next(p for p in internal_exports(world / "providers", SOURCES) if p.name.startswith("kok_datenerhebung"))
    source, spec = route(internal, SOURCES)
    copy = tmp_path / source.country / source.source_id / internal.name
    copy.parent.mkdir(parents=True)
    frame = pd.read_csv(internal, sep=spec.delimiter, encoding=spec.encoding, dtype=str)
    frame["Spitzname"] = "Ahmadi"  # a nickname column nobody mapped
    frame.to_csv(copy, sep=spec.delimiter, encoding=spec.encoding, index=False)
    outbox = tmp_path / "outbox"
    receipts, refused = export([copy], outbox, secrets(world / "secrets"), SOURCES)
    assert receipts == []
    assert [r.check for r in refused] == ["header"]
    assert "Spitzname" in str(refused[0])
    assert "Ahmadi" not in str(refused[0])
    assert not outbox.exists() or not any(outbox.rglob("*"))
    report = refused[0].report.read_text(encoding="utf-8")
    assert "Spitzname" in report
    assert "Ahmadi" not in report
    assert isinstance(refused[0], KitRefused)


def test_the_kit_is_deterministic_and_gives_receipts(world, tmp_path):
    files = [p for p in internal_exports(world / "providers", SOURCES) if p.parent.name == "GR-ASY-GAS"][:2]
    work = tmp_path / "providers"
    shutil.copytree(files[0].parent, work / files[0].parent.name)
    receipts, refused = export(
        internal_exports(work, SOURCES), tmp_path / "outbox", secrets(world / "secrets"), SOURCES
    )
    assert refused == []
    for r in receipts:
        landed = world / "landing" / "GR" / "GR-ASY-GAS" / r.internal_file
        assert (tmp_path / "outbox" / "GR" / "GR-ASY-GAS" / r.internal_file).read_bytes() == landed.read_bytes()
        assert (
            r.columns_dropped
            and "Σημειώσεις" in r.columns_dropped
            or r.records == 0
            or "thymata" not in r.internal_file
        )


def test_linkage_finds_the_worlds_persons(world, ingested):
    with duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True) as con:
        quality = linkage_quality(con, world / "truth")
    overall = quality["_T"]
    assert overall.true_pairs > 20
    assert overall.recall >= 0.9, overall
    assert overall.f1 >= 0.85, overall


def test_a_human_recorded_in_two_countries_is_a_person_in_each(world, ingested):
    """Linkage stays within a country (each country's encodings are keyed by its own secret): no
    linked person holds records of two countries, so a human recorded in two countries is two
    persons, two privacy units."""
    with duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True) as con:
        linked = con.sql("SELECT reporting_country, source_id, record_id, person_id FROM linked.record_persons").df()
        units = privacy_units(world / "truth", con)
    assert (linked.groupby("person_id").reporting_country.nunique() == 1).all()
    victims = pd.read_parquet(world / "truth/victims.parquet", columns=["person_key", "human_id"])
    records = pd.read_parquet(world / "truth/records.parquet", columns=["source_id", "record_id", "victim_key"])
    humans = linked.merge(records, on=["source_id", "record_id"]).merge(
        victims, left_on="victim_key", right_on="person_key"
    )
    per_human = humans.groupby("human_id").agg(
        countries=("reporting_country", "nunique"), persons=("person_id", "nunique")
    )
    travelled = per_human[per_human.countries >= 2]
    assert len(travelled) > 0  # the world has humans in two countries, and their records in the warehouse
    assert (travelled.persons >= travelled.countries).all()
    assert units.countries[2] == pytest.approx(len(travelled) / units.humans)  # every record landed


def name_bits(encodings: list[str]) -> np.ndarray:
    """The name part of each encoding, as a 0/1 matrix (one row per encoding)."""
    raw = [decode(parts(e)[0]).tobytes() for e in encodings]
    return np.unpackbits(np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(len(raw), -1), axis=1)


def test_a_dictionary_attack_without_the_secret_matches_nobody(ingested, world):
    """The attacker holds the warehouse and the name pools (every common name of the route's
    populations) but guesses the key: compared with every record, no guessed encoding comes
    near any record's."""
    with duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True) as con:
        stolen = [
            e
            for (e,) in con.sql(
                "SELECT identity_encoding FROM harmonised.case_records WHERE identity_encoding IS NOT NULL"
            ).fetchall()
            if parts(e)[0]
        ]
    from provider.normalise import name_tokens

    guesses = []
    for pop in pools().populations.values():
        for given in [*pop.female[:8], *pop.male[:8]]:
            for family in pop.family[:8]:
                guesses.append(
                    Identity(tuple(name_tokens(given.split("|")[0], family.split("|")[0])), "", None, None, None)
                )
    records = name_bits(stolen).astype(np.float32)

    def best_scores(key: bytes) -> np.ndarray:  # every record against every guess: the best Dice
        g = name_bits(encode(guesses, key)).astype(np.float32)
        return (2 * (records @ g.T) / (records.sum(1)[:, None] + g.sum(1)[None, :])).max(axis=1)

    floor = linkage().encodings.floor
    assert len(records) * len(guesses) > 100_000  # the attack compared many guesses with many records
    assert best_scores(b"a guessed key: the attacker has everything but the secret").max() < floor
    # the same attack with a country's real secret finds that country's common names
    assert (best_scores(secrets(world / "secrets")("DE")) >= floor).sum() > 10


def test_the_kit_runs_without_the_observatorys_stack(world, tmp_path):
    """`thb provider export` imports nothing of Prefect, OpenDP, Dash or statsmodels: the
    [provider] install, without the [observatory] extra, is enough on a provider's machine."""
    import subprocess
    import sys

    source = world / "providers" / "GR" / "GR-ASY-GAS"
    script = (
        "import sys; from typer.testing import CliRunner; from thb.cli import app; "
        f"r = CliRunner().invoke(app, ['provider', 'export', {str(source)!r}, '--outbox', {str(tmp_path / 'out')!r}, "
        f"'--secret', {str(world / 'secrets')!r}]); "
        "stack = ('prefect', 'opendp', 'dash', 'statsmodels', 'plotly'); "
        "print(r.exit_code, sorted(m for m in stack if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split()[0] == "0", out.stdout + out.stderr
    assert out.stdout.strip().endswith("[]"), out.stdout
    assert any((tmp_path / "out" / "GR" / "GR-ASY-GAS").iterdir())
