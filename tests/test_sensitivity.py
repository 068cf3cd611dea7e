"""Adding or removing one person changes every measured query by at most its stated
sensitivity (L2 = 1), on the real warehouse: the premise of every privacy charge."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from dp.measure import gaussian, joint_counts, marginal, plan
from dp.spec import release_spec

SPEC = release_spec()


def _neighbours(warehouse, table: str, tmp_path):
    """The warehouse's persons (or screenings) as they are, without one row, with one added."""
    src = duckdb.connect(str(warehouse), read_only=True)
    frame = src.sql(f"SELECT * FROM {table}").df()
    src.close()
    rng = np.random.default_rng(0)
    row = frame.iloc[[int(rng.integers(len(frame)))]]
    schema, name = table.split(".")
    out = {}
    for label, data in {"as is": frame, "one removed": frame.drop(row.index), "one added": pd.concat([frame, row], ignore_index=True)}.items():
        con = duckdb.connect()
        con.sql(f"CREATE SCHEMA {schema}")
        con.register("x", data)
        con.sql(f"CREATE TABLE {table} AS SELECT * FROM x")
        out[label] = con
    return out, row


@pytest.mark.parametrize("dataset", list(SPEC.datasets))
def test_one_person_moves_each_measured_marginal_by_at_most_one(ingested, tmp_path, dataset):
    ds = SPEC.datasets[dataset]
    cons, row = _neighbours(ingested / "warehouse.duckdb", ds.source, tmp_path)
    period = (row.first_quarter.iloc[0] if "first_quarter" in row else
              f"{row.screening_date.iloc[0].year}-Q{(row.screening_date.iloc[0].month - 1) // 3 + 1}")
    counts = {label: joint_counts(con, ds, period) for label, con in cons.items()}
    scales = plan(SPEC, dataset)
    moved = 0
    for neighbour in ("one removed", "one added"):
        for area in counts["as is"]:
            for m, scale in scales.items():
                diff = marginal(ds, counts[neighbour][area], m) - marginal(ds, counts["as is"][area], m)
                l2 = float(np.sqrt((diff**2).sum()))
                assert l2 <= 1, (neighbour, area, m)  # the stated sensitivity
                moved += l2 == 1
    assert moved == 2 * len(scales)  # the person is in exactly one cell of every marginal, in one country
    for m, scale in scales.items():  # and the charge OpenDP computes is ρ = Δ² / 2σ² for Δ = 1
        assert gaussian(scale).map(1) == pytest.approx(1 / (2 * scale**2))
