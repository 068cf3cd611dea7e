"""What compares with the simulator's truth, or draws noise that no ledger charges (the
benchmarks, `dp.estimates.versus_truth`), runs on simulated worlds only: on a real
warehouse it would print true counts, or publishable figures with uncharged noise.

A data directory is a simulated world when the simulator wrote its truth/ and every case
record of its warehouse is one the simulator made (its source and record id are in the
truth). The check says no more than that: never how many records differ.
"""

from pathlib import Path

import duckdb

from thb.errors import UserInputError


def require_simulated(data_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Raise UserInputError unless `data_dir` (its warehouse open as `con`) is a simulated world."""
    truth = Path(data_dir) / "truth"
    if not ((truth / "world.json").is_file() and (truth / "records.parquet").is_file()):
        raise UserInputError(
            f"{data_dir} is not a simulated world (no truth/ written by `thb simulate`): this compares "
            "with the truth or draws uncharged noise, so it runs on simulated data only"
        )
    ((foreign,),) = con.execute(
        """SELECT EXISTS (SELECT 1 FROM harmonised.case_records c
                          ANTI JOIN read_parquet(?) t USING (source_id, record_id))""",
        [str(truth / "records.parquet")],
    ).fetchall()
    if foreign:
        raise UserInputError(
            f"the warehouse of {data_dir} holds records the simulator did not make: this compares with "
            "the truth or draws uncharged noise, so it runs on simulated worlds only"
        )
