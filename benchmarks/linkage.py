"""Linkage benchmark: how well records are linked into persons without shared keys, against
the simulated truth, and what that does to the estimate of hidden victims.

Three linkages of the same ingested records, per simulated world:
  truth      the true persons (victim_key): what perfect linkage would give;
  exact      exact keyed hashing of the normalised identifiers (name, sex, full date of
             birth), plus shared keys: what a provider would otherwise build;
  encodings  the warehouse's linkage on the provider kit's encodings (pipelines/match.py).

Prints pairwise precision, recall and F1 per country and overall for `exact` and
`encodings`, the blocking's recall and the linkage's time, then for each linkage the
hidden-victim estimates (countries and years with ≥ 200 persons seen): median ratio to the
estimate with true links, median estimate / truth, and 95 % interval coverage.

    python benchmarks/linkage.py                   # 2 worlds at scale 1 (~6 min)
    python benchmarks/linkage.py --worlds 5
"""

import argparse
import hashlib
import hmac
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from connectors.mapping import load_sources
from connectors.read import RECORD_NO, read_export
from pipelines.link import link, linkage, record_persons
from pipelines.match import Pairs, candidate_pairs, clusters
from provider.kit import identities, internal_exports, route, secrets
from simulator.quality import Quality, pairwise

SOURCES = load_sources()


def exact_hashes(world: Path) -> pd.DataFrame:
    """(source_id, record_id, hash): keyed hashes of each case record's full normalised identity."""
    secret_for = secrets(world / "secrets")
    rows = []
    with duckdb.connect() as con, tempfile.TemporaryDirectory() as tmp:
        for path in internal_exports(world / "providers", SOURCES):
            source, spec = route(path, SOURCES)
            if "identity_encoding" not in spec.written_by_kit:  # no names (an asylum screening export)
                continue
            table = read_export(con, path, spec, Path(tmp), source.internal_columns(spec)).to_pandas()
            table = table.drop(columns=RECORD_NO)
            secret = secret_for(source.country)
            ids = table[source.column(spec, "record_id")]
            for record_id, ident in zip(ids, identities(table, source, spec), strict=True):
                key = hmac.new(secret, repr(tuple(ident)).encode(), hashlib.sha256).hexdigest() if ident.known else None
                rows.append((source.source_id, record_id, key))
    return pd.DataFrame(rows, columns=["source_id", "record_id", "hash"])


def exact_linkage(con: duckdb.DuckDBPyConnection, hashes: pd.DataFrame) -> pd.DataFrame:
    """Records linked when their keyed hashes are equal or they share a key."""
    records = con.sql(
        "SELECT reporting_country, source_id, record_id, person_key FROM harmonised.case_records ORDER BY ALL"
    ).df()
    records = records.merge(hashes, on=["source_id", "record_id"], how="left")
    out = []
    for _, rows in records.groupby("reporting_country"):
        rows = rows.reset_index(drop=True)
        groups = rows[rows.hash.notna()].groupby("hash").indices.values()
        pairs = np.array([(g[0], j) for g in groups for j in g[1:]], dtype=int).reshape(-1, 2)
        linked = Pairs(np.ones(len(pairs)), pairs[:, 0], pairs[:, 1], len(pairs))
        keys = [k if isinstance(k, str) else None for k in rows.person_key]
        cluster = clusters(len(rows), linked, linked.score, 0.5, keys)
        out.append(rows[["reporting_country", "source_id", "record_id"]].assign(person_id=[f"c{c}" for c in cluster]))
    return pd.concat(out, ignore_index=True)


def estimates(data: Path, world: Path, persons_of: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The hidden-victim estimates with a given linkage (a copy of the warehouse re-linked)."""
    from dp.estimates import versus_truth
    from dp.spec import release_spec
    from pipelines.release import sources_by_country

    variant = Path(tempfile.mkdtemp(prefix="thb-linkage-"))
    shutil.copy(data / "warehouse.duckdb", variant / "warehouse.duckdb")
    (variant / "truth").symlink_to(world / "truth")
    with duckdb.connect(str(variant / "warehouse.duckdb")) as con:
        link(con, SOURCES, persons_of)
    try:
        return versus_truth(variant, sources_by_country(), release_spec(), seed=seed)
    finally:
        shutil.rmtree(variant)


def blocking_recall(con: duckdb.DuckDBPyConnection, truth: pd.DataFrame) -> tuple[int, int]:
    """True pairs of encoded records that blocking let through (at any score), of all."""
    records = con.sql(
        "SELECT reporting_country, source_id, record_id, identity_encoding FROM harmonised.case_records "
        "WHERE identity_encoding IS NOT NULL ORDER BY ALL"
    ).df()
    records = records.merge(truth, on=["source_id", "record_id"])
    kept = total = 0
    everything = linkage().encodings.model_copy(update={"floor": 0.0})
    for _, rows in records.groupby("reporting_country"):
        victim = rows.victim_key.to_numpy()
        pairs = candidate_pairs(rows.identity_encoding.tolist(), everything)
        kept += int((victim[pairs.left] == victim[pairs.right]).sum())
        sizes = rows.groupby("victim_key").size()
        total += int((sizes * (sizes - 1) // 2).sum())
    return kept, total


def row(name: str, q: Quality) -> str:
    counts = f"{q.records:>7,} {q.true_pairs:>7,} {q.linked_pairs:>7,}"
    return f"{name:>4} {counts} {q.precision:>7.3f} {q.recall:>7.3f} {q.f1:>7.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from pipelines.ingest import ingest
    from simulator import simulate

    linked: dict[str, list[pd.DataFrame]] = {"exact": [], "encodings": []}
    found: dict[str, list[pd.DataFrame]] = {"truth": [], "exact": [], "encodings": []}
    kept = total = 0
    seconds = []
    for w in range(args.worlds):
        seed = 500 + w
        data = Path(tempfile.mkdtemp(prefix=f"thb-linkage-world{seed}-"))
        simulate(data, seed=seed, scale=args.scale)
        ingest(data)
        truth = pd.read_parquet(data / "truth" / "records.parquet", columns=["source_id", "record_id", "victim_key"])
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            t0 = time.perf_counter()
            encoded = record_persons(con)
            seconds.append(time.perf_counter() - t0)
            exact = exact_linkage(con, exact_hashes(data))
            k, t = blocking_recall(con, truth)
        kept, total = kept + k, total + t
        true_links = encoded[["reporting_country", "source_id", "record_id"]].merge(
            truth, on=["source_id", "record_id"]
        )
        true_links = true_links.assign(person_id=true_links.victim_key.astype(str)).drop(columns="victim_key")
        for name, persons in (("exact", exact), ("encodings", encoded)):
            linked[name].append(persons.merge(truth, on=["source_id", "record_id"]).assign(world=seed))
        for name, persons in (("truth", true_links), ("exact", exact), ("encodings", encoded)):
            found[name].append(estimates(data, data, persons, seed).assign(world=seed, linkage=name))
        shutil.rmtree(data)
    blocking = f"blocking kept {kept:,} of {total:,} true pairs ({kept / total:.4f})"
    print(f"{args.worlds} worlds at scale {args.scale}; {blocking}")
    print(f"linkage on encodings: median {np.median(seconds):.1f} s per world (all countries)\n")
    for name, frames in linked.items():
        print(f"{name}: pairwise quality by country\n  cc records    true  linked    prec  recall      F1")
        every = pd.concat(frames)
        world = every.world.astype(str) + "/"  # ids repeat across worlds: keep each world's apart
        quality = pairwise(every.assign(victim_key=world + every.victim_key, person_id=world + every.person_id))
        for cc, q in quality.items():
            print(row("all" if cc == "_T" else cc, q))
        print()
    every = pd.concat([f for frames in found.values() for f in frames])
    base = every[every.linkage == "truth"].set_index(["world", "country", "year"]).obs_value
    print("hidden-victim estimates (country-years with ≥ 200 persons seen)")
    print("linkage    cells  median / true-link estimate  median / truth  95 % coverage")
    for name in ("truth", "exact", "encodings"):
        e = every[every.linkage == name].set_index(["world", "country", "year"])
        ratio = (e.obs_value / base.reindex(e.index)).dropna()
        print(
            f"{name:<10} {len(e):>5}  {np.median(ratio):>27.3f}  {np.median(e.obs_value / e.truth):>14.3f}"
            f"  {e.covered.mean():>13.3f}"
        )


if __name__ == "__main__":
    main()
