"""Where things live. Every path derives from THB_DATA_DIR (default ./data).

>>> from thb.settings import Settings
>>> Settings(data_dir="/tmp/x").warehouse
PosixPath('/tmp/x/warehouse.duckdb')
"""

from functools import cached_property
from pathlib import Path

from pydantic import ByteSize
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration, from THB_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="THB_", frozen=True)

    data_dir: Path = Path("data")
    connectors_dir: Path = REPO / "connectors" / "sources"
    contracts_dir: Path = REPO / "data_contracts" / "suites"
    duckdb_memory: str = "1GB"  # DuckDB spills to data_dir/tmp beyond this
    # a delivery larger than this, or an XLSX that would inflate beyond it, is quarantined
    # unread (THB_MAX_FILE_SIZE=512MiB); the largest real quarterly export is a few MB
    max_file_size: ByteSize = ByteSize(256 * 2**20)
    # published reference datasets (capture-history tables for MSE), beside the checkout
    shared_data: Path = REPO.parent / "shared" / "data"

    @cached_property
    def landing(self) -> Path:
        """Where sources deliver their exports: data_dir/landing/<country>/<source_id>/."""
        return self.data_dir / "landing"

    @cached_property
    def quarantine(self) -> Path:
        """Where refused deliveries are moved whole, each beside a report that names the failed
        checks, columns and record numbers, never a value from the file."""
        return self.data_dir / "quarantine"

    @cached_property
    def warehouse(self) -> Path:
        """The private DuckDB warehouse: never published, never opened by the dashboard."""
        return self.data_dir / "warehouse.duckdb"

    @cached_property
    def release_dir(self) -> Path:
        """The published releases: one folder each, and the readers' database thb_release.duckdb."""
        return self.data_dir / "release"
