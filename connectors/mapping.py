"""Source mapping files, validated with pydantic.

A mapping file says how one source's exports look: file pattern, format, encoding,
delimiter, date format, which harmonised field sits in which column, and how local
labels map to codes (a shared language vocabulary, plus the source's own overrides).

>>> from connectors.mapping import load_sources
>>> src = load_sources()["DE-POL-BKA"]
>>> src.files[0].format, src.value_map("gender")["weiblich"]
('csv', 'female')
"""

from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data_contracts.codelists import codes, schema

HERE = Path(__file__).parent
KIND_SCHEMA = {"case": "case_record", "screening": "screening_record"}
CONTEXT_FIELDS = ("source_id", "source_type", "reporting_country")  # set by the mapping


def normalise(label: str) -> str:
    """Labels are matched without case and surrounding blanks (str.lower, as SQL lower())."""
    return label.strip().lower()


def field_list(kind: str) -> dict[str, str | None]:
    """Field → the code list that holds its values: a list name, 'flag', 'country' or None."""
    return {f: c.values_list for f, c in schema(KIND_SCHEMA[kind]).columns.items()}


class Vocabulary(BaseModel):
    """Labels of one language: default column names, value labels, spellings of 'unknown'."""

    model_config = ConfigDict(extra="forbid")
    language: str
    name: str
    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    unknown: list[str] = []


class FileSpec(BaseModel):
    """One kind of export file of a source."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["case", "screening"]
    pattern: str = Field(description="glob; '*' stands for the period, e.g. faelle_*.csv")
    format: Literal["csv", "xlsx", "jsonl"]
    encoding: str = "utf-8"
    delimiter: str = ","
    date_format: str = "%Y-%m-%d"
    country_codes: Literal["alpha2", "alpha3"] = "alpha2"
    age_in_years: bool = False
    columns: dict[str, str | None] = Field(description="harmonised field → export column (~: vocabulary name)")
    constants: dict[str, str] = {}

    @model_validator(mode="after")
    def _known_fields(self):
        fields = set(schema(KIND_SCHEMA[self.kind]).columns) - set(CONTEXT_FIELDS)
        unknown = (set(self.columns) | set(self.constants)) - fields
        if unknown:
            raise ValueError(f"unknown harmonised fields: {sorted(unknown)}")
        if "record_id" not in self.columns:
            raise ValueError("an export must have a record_id column")
        return self

    def matches(self, filename: str) -> bool:
        return Path(filename).match(self.pattern)


class SourceMapping(BaseModel):
    """A registered source and the exports it delivers."""

    model_config = ConfigDict(extra="forbid")
    source_id: str = Field(pattern=r"^[A-Z]{2}-[A-Z]+-[A-Z0-9]+$")
    name: str
    source_type: str
    country: str
    vocabulary: str | None = None
    values: dict[str, dict[str, str]] = {}
    unknown: list[str] = []
    files: list[FileSpec]

    @field_validator("source_type")
    @classmethod
    def _source_type(cls, v):
        if v not in codes("source_type"):
            raise ValueError(f"source_type must be one of {codes('source_type')}")
        return v

    @field_validator("country")
    @classmethod
    def _country(cls, v):
        if v not in codes("reporting_country"):
            raise ValueError(f"country must be one of {codes('reporting_country')}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if not self.source_id.startswith(self.country + "-"):
            raise ValueError("source_id must start with the country code")
        kinds = [f.kind for f in self.files]
        if len(kinds) != len(set(kinds)):
            raise ValueError("one export per kind (case, screening): a source with two formats is two sources")
        for spec in self.files:
            for field in spec.columns:
                self.column(spec, field)  # raises if no name is known
            for field, value in spec.constants.items():
                if value not in codes(field_list(spec.kind)[field]):
                    raise ValueError(f"constant {field}={value!r} is not a code")
        return self

    @property
    def vocab(self) -> Vocabulary | None:
        return load_vocabulary(self.vocabulary) if self.vocabulary else None

    def column(self, spec: FileSpec, field: str) -> str:
        """The export column that holds a harmonised field."""
        name = spec.columns[field] or (self.vocab.columns.get(field) if self.vocab else None)
        if not name:
            raise ValueError(f"{self.source_id}: no column name for {field}")
        return name

    def columns(self, spec: FileSpec) -> dict[str, str]:
        """Harmonised field → export column, in export order."""
        return {field: self.column(spec, field) for field in spec.columns}

    def unknown_labels(self) -> list[str]:
        """Spellings of 'not known' that any coded column may hold."""
        return [*(self.vocab.unknown if self.vocab else []), *self.unknown]

    def value_map(self, codelist: str) -> dict[str, str]:
        """Normalised local label → code for one code list (or 'flag'); first label per code
        is the canonical spelling."""
        base = self.vocab.values.get(codelist, {}) if self.vocab else {}
        merged = base | self.values.get(codelist, {})
        out = {normalise(k): v for k, v in merged.items()}
        if "unknown" in codes(codelist):
            out |= {normalise(k): "unknown" for k in self.unknown_labels()}
        bad = set(out.values()) - set(codes(codelist))
        if bad:
            raise ValueError(f"{self.source_id}: {codelist} maps to unknown codes {sorted(bad)}")
        return out

    def labels(self, codelist: str) -> dict[str, str]:
        """Code → the canonical local label (the source's own spelling first)."""
        own = self.values.get(codelist, {})
        base = self.vocab.values.get(codelist, {}) if self.vocab else {}
        out: dict[str, str] = {}
        for label, code in [*own.items(), *base.items()]:
            out.setdefault(code, label)
        return out

    def spec_for(self, filename: str) -> FileSpec | None:
        return next((s for s in self.files if s.matches(filename)), None)


@cache
def load_vocabulary(language: str) -> Vocabulary:
    path = HERE / "vocabularies" / f"{language}.yaml"
    return Vocabulary(**yaml.safe_load(path.read_text(encoding="utf-8")))


def load_source(path: Path) -> SourceMapping:
    """Read and validate one mapping file; errors name the file. Each version of a file
    (its modification time and size) is parsed once per process: a release reads the
    mappings a dozen times, and YAML parsing cost 0.2 s a time."""
    stat = Path(path).stat()
    return _parse_source(Path(path).resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=512)
def _parse_source(path: Path, mtime_ns: int, size: int) -> SourceMapping:
    try:
        return SourceMapping(**yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as exc:
        raise ValueError(f"invalid connector mapping {path.name}: {exc}") from exc


def load_sources(directory: Path | None = None) -> dict[str, SourceMapping]:
    """Every registered source, by source_id (default: the packaged connectors/sources)."""
    directory = Path(directory or HERE / "sources")
    sources = [load_source(p) for p in sorted(directory.glob("*.yaml"))]
    return {s.source_id: s for s in sources}
