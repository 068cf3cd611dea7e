"""Source mapping files, validated with pydantic.

A mapping file says how one source's exports look: file pattern, format, encoding,
delimiter, date format, which harmonised field sits in which column, and how local
labels map to codes (a shared language vocabulary, plus the source's own overrides).

>>> from connectors.mapping import load_sources
>>> src = load_sources()["DE-POL-BKA"]
>>> src.files[0].format, src.value_map("gender")["weiblich"]
('csv', 'female')
"""

import json
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from data_contracts.codelists import codelists, codes, country_codes, schema
from thb.config import ConfigModel, load_yaml

HERE = Path(__file__).parent
VOCABULARIES = HERE / "vocabularies"
KIND_SCHEMA = {"case": "case_record", "screening": "screening_record"}
CONTEXT_FIELDS = ("source_id", "source_type", "reporting_country")  # set by the mapping
NAME_IDENTIFIERS = ("given_name", "family_name", "full_name", "date_of_birth")
IDENTIFIERS = (*NAME_IDENTIFIERS, "applicant_number")  # held by providers only
# identifier → the pseudonymous field the provider kit writes from it (and then drops it)
PSEUDONYM = {**dict.fromkeys(NAME_IDENTIFIERS, "identity_encoding"), "applicant_number": "applicant_key"}


def normalise(label: str) -> str:
    """Labels are matched without case and surrounding blanks (str.lower, as SQL lower())."""
    return label.strip().lower()


def field_list(kind: str) -> dict[str, str | None]:
    """Field → the code list that holds its values: a list name, 'flag', 'country' or None."""
    return {f: c.values_list for f, c in schema(KIND_SCHEMA[kind]).columns.items()}


def exported_fields(kind: str | None = None) -> list[str]:
    """The harmonised fields an export can hold (of one kind, or of any), in schema order."""
    kinds = [kind] if kind else list(KIND_SCHEMA)
    fields = [f for k in kinds for f in schema(KIND_SCHEMA[k]).columns if f not in CONTEXT_FIELDS]
    return list(dict.fromkeys(fields))


def _check_values(values: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Label tables: each names a code list (or 'flag') and maps labels to its codes."""
    for name, labels in values.items():
        if name not in codelists():
            raise ValueError(f"{name!r} is not a code list (have: {', '.join(codelists())})")
        if bad := sorted(set(labels.values()) - set(codes(name))):
            raise ValueError(f"{name}: labels map to {bad}, not codes of the list ({', '.join(codes(name))})")
    return values


def _enum(values: Callable[[], list[str]]) -> Callable[[dict[str, Any]], None]:
    """A JSON Schema hook listing the allowed values (read when the schema is generated,
    so that importing this module reads no code list)."""
    return lambda s: s.update(enum=values())


def _key_enum(values: Callable[[], list[str]]) -> Callable[[dict[str, Any]], None]:
    """A JSON Schema hook listing the allowed keys of a mapping."""
    return lambda s: s.update(propertyNames={"enum": values()})


class Vocabulary(ConfigModel):
    """connectors/vocabularies/<language>.yaml: labels of one language, shared by the
    sources that write it: default column names, value labels, spellings of 'unknown'."""

    language: str
    """Language tag, the file's name (de, sr-latn, ...)."""
    name: str
    """The language's English name."""
    columns: dict[str, str] = {}
    """Harmonised field → the usual column name in this language."""
    values: dict[str, dict[str, str]] = {}
    """Code list (or 'flag') → {local label: code}."""
    unknown: list[str] = []
    """Spellings of 'not known' that any coded column may hold."""

    @field_validator("columns")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        if unknown := sorted(set(v) - set(exported_fields()) - set(IDENTIFIERS)):
            raise ValueError(f"unknown harmonised fields: {unknown}")
        return v

    @field_validator("values")
    @classmethod
    def _values(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return _check_values(v)


class FlagColumns(ConfigModel):
    """A coded field derived from 0/1 columns, one per code (HTCDS: isSexualExploit,
    isForcedLabour, ...). Each flag holds 1 or 0 (or the source's yes/no labels); empty or a
    spelling of 'not known' is not known. The field is the code of the flags that hold 1, or
    `several` if they stand for more than one code; if none holds 1, `none` when every flag
    holds 0, else unknown (docs/connectors.md)."""

    columns: dict[str, str] = Field(min_length=1)
    """Flag column → the code it stands for (two columns may stand for one code)."""
    several: str = "other"
    """The code when flags of more than one code hold 1."""
    none: str = "unknown"
    """The code when every flag holds 0."""


class FileSpec(ConfigModel):
    """One kind of export file of a source."""

    kind: Literal["case", "screening"]
    """case: case records of victims; screening: asylum applicants screened."""
    pattern: str = Field(description="glob; '*' stands for the period, e.g. faelle_*.csv")
    format: Literal["csv", "xlsx", "jsonl"]
    """File format."""
    encoding: str = "utf-8"
    """Text encoding of csv and jsonl files (Python codec name: utf-8, utf-8-sig, cp1250-cp1253, ...)."""
    delimiter: str = ","
    """Field separator of csv files."""
    date_format: str = "%Y-%m-%d"
    """strftime codes of the dates (xlsx: of date cells written as text); a year alone (%Y) is read as 1 July."""
    country_codes: Literal["alpha2", "alpha3"] = "alpha2"
    """ISO 3166-1 codes of country columns."""
    age_in_years: bool = False
    """True: the age_group column holds an age in years."""
    age_bands: bool = False
    """True: the age_group column holds age bands (9-17, 9--17, 48+), each read as the age group that
    holds most of its years, ties to the younger (docs/connectors.md); other labels map as labels."""
    from_flags: dict[str, FlagColumns] = Field(
        {},
        description="coded fields derived from 0/1 columns: field → {columns: {flag column: code}, several, none}",
        json_schema_extra=_key_enum(exported_fields),
    )
    columns: dict[str, str | None] = Field(
        description="harmonised field → export column (~: the vocabulary's name), in export order",
        json_schema_extra=_key_enum(exported_fields),
    )
    constants: dict[str, str] = Field(
        {},
        description="fields the source does not export but implies: field → code",
        json_schema_extra=_key_enum(exported_fields),
    )
    identifiers: dict[
        Literal["given_name", "family_name", "full_name", "date_of_birth", "applicant_number"], str | None
    ] = Field(
        {},
        description="identifier → column of the provider's internal export (~: the vocabulary's name); "
        "the provider kit turns names and dates of birth into identity_encoding and an asylum service's "
        "applicant number into applicant_key (a keyed hash), and drops them: they never reach landing/",
    )
    drop: list[str] = []
    """Other columns of the internal export (free text, contact details) that the provider kit drops unread."""
    record_ids: Literal["exported", "assigned"] = "exported"
    """assigned: the internal export has no record id column; the provider kit assigns keyed, stable ids."""

    @model_validator(mode="after")
    def _known_fields(self):
        fields = exported_fields(self.kind)
        unknown = (set(self.columns) | set(self.constants)) - set(fields)
        if unknown:
            raise ValueError(f"unknown harmonised fields of a {self.kind} export: {sorted(unknown)}")
        if "record_id" not in self.columns:
            raise ValueError("an export must have a record_id column")
        if missing := sorted({PSEUDONYM[i] for i in self.identifiers} - set(self.columns)):
            raise ValueError(f"the provider kit writes {', '.join(missing)} from identifiers: map that column too")
        if "identity_encoding" in self.columns and not set(self.identifiers) & set(NAME_IDENTIFIERS):
            raise ValueError("the provider kit writes identity_encoding from names and dates of birth: list them")
        for field, value in self.constants.items():
            values_list = field_list(self.kind)[field]
            allowed = country_codes() if values_list == "country" else codes(values_list) if values_list else None
            if allowed is not None and value not in allowed:
                raise ValueError(f"constant {field}={value!r} is not a code")
        return self

    @model_validator(mode="after")
    def _age_read_one_way(self):
        if self.age_bands and self.age_in_years:
            raise ValueError("age_in_years or age_bands: the age_group column holds one or the other")
        if self.age_bands and "age_group" not in self.columns:
            raise ValueError("age_bands: the export has no age_group column")
        return self

    @model_validator(mode="after")
    def _flag_rules(self):
        taken = {c for c in self.columns.values() if c}
        for field, rule in self.from_flags.items():
            values_list = field_list(self.kind).get(field)
            if values_list in (None, "flag", "country") or "unknown" not in codes(values_list):
                raise ValueError(f"from_flags.{field}: not a coded field (of a list with an unknown code)")
            if field in self.columns or field in self.constants:
                raise ValueError(f"from_flags.{field}: the field is also in columns or constants")
            if bad := sorted({*rule.columns.values(), rule.several, rule.none} - set(codes(values_list))):
                raise ValueError(f"from_flags.{field}: {bad} are not codes of the {values_list} list")
            if twice := sorted(taken & set(rule.columns)):
                raise ValueError(f"from_flags.{field}: column(s) {twice} already feed another field")
            taken |= set(rule.columns)
        return self

    @property
    def written_by_kit(self) -> set[str]:
        """The export's fields the provider kit writes (absent from the internal export): the
        pseudonyms of its identifiers, and record ids where they are assigned."""
        assigned = {"record_id"} if self.record_ids == "assigned" else set()
        return {PSEUDONYM[i] for i in self.identifiers} | assigned

    def matches(self, filename: str) -> bool:
        """Whether a delivered file's name is one of this export's (its glob pattern)."""
        return Path(filename).match(self.pattern)


class SourceMapping(ConfigModel):
    """connectors/sources/<source_id>.yaml: a registered source and the exports it delivers."""

    source_id: str = Field(pattern=r"^[A-Z]{2}-[A-Z]+-[A-Z0-9]+$")
    """<country>-<TYPE>-<NAME>, e.g. AT-NGO-MENVIA; also the file's name."""
    name: str
    """The source's name, in English."""
    source_type: str = Field(json_schema_extra=_enum(lambda: codes("source_type")))
    """A code of the source_type list."""
    country: str = Field(json_schema_extra=_enum(lambda: codes("reporting_country")))
    """The reporting country (a code of the reporting_country list)."""
    vocabulary: str | None = None
    """Shared labels of a language: a file in connectors/vocabularies/ (without .yaml)."""
    values: dict[str, dict[str, str]] = Field({}, json_schema_extra=_key_enum(lambda: list(codelists())))
    """The source's own labels, added to (or overriding) the vocabulary's: code list → {label: code}."""
    unknown: list[str] = []
    """The source's own spellings of 'not known', in any coded column."""
    files: list[FileSpec]
    """The exports: at most one per kind."""

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

    @field_validator("vocabulary")
    @classmethod
    def _vocabulary(cls, v):
        if v is not None and not (VOCABULARIES / f"{v}.yaml").is_file():
            have = ", ".join(sorted(p.stem for p in VOCABULARIES.glob("*.yaml")))
            raise ValueError(f"no vocabulary {v!r} in connectors/vocabularies (have: {have})")
        return v

    @field_validator("values")
    @classmethod
    def _values(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return _check_values(v)

    @model_validator(mode="after")
    def _consistent(self):
        if not self.source_id.startswith(self.country + "-"):
            raise ValueError("source_id must start with the country code")
        kinds = [f.kind for f in self.files]
        if len(kinds) != len(set(kinds)):
            raise ValueError("one export per kind (case, screening): a source with two formats is two sources")
        for i, spec in enumerate(self.files):
            for field in [*spec.columns, *spec.identifiers]:
                if not self._column_name(spec, field):
                    raise ValueError(
                        f"files[{i}].columns.{field}: no column name (~ needs a vocabulary that names the field)"
                    )
        return self

    @property
    def vocab(self) -> Vocabulary | None:
        """The shared labels of the source's language, if its mapping names one."""
        return load_vocabulary(self.vocabulary) if self.vocabulary else None

    def _column_name(self, spec: FileSpec, field: str) -> str | None:
        named = spec.columns.get(field) or spec.identifiers.get(field)  # type: ignore[call-overload]
        return named or (self.vocab.columns.get(field) if self.vocab else None)

    def identifier_columns(self, spec: FileSpec) -> dict[str, str]:
        """Identifier → column of the provider's internal export."""
        return {field: self.column(spec, field) for field in spec.identifiers}

    def internal_columns(self, spec: FileSpec) -> list[str]:
        """The columns of the provider's internal export: what the kit reads (the export's
        columns without those the kit writes, plus identifiers and dropped columns)."""
        kept = [c for f, c in self.columns(spec).items() if f not in spec.written_by_kit]
        return [*kept, *self.identifier_columns(spec).values(), *spec.drop]

    def column(self, spec: FileSpec, field: str) -> str:
        """The export column that holds a harmonised field."""
        name = self._column_name(spec, field)
        if not name:
            raise ValueError(f"{self.source_id}: no column name for {field}")
        return name

    def columns(self, spec: FileSpec) -> dict[str, str]:
        """What each export column feeds → the column: harmonised field → its column, in export
        order, then the flag columns of fields derived from flags, as `field[column]`."""
        named = {field: self.column(spec, field) for field in spec.columns}
        return named | {f"{field}[{c}]": c for field, rule in spec.from_flags.items() for c in rule.columns}

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
        """The export a delivered file belongs to, by its name; None if it matches none."""
        return next((s for s in self.files if s.matches(filename)), None)


@cache
def load_vocabulary(language: str, directory: Path = VOCABULARIES) -> Vocabulary:
    """The shared labels of one language (connectors/vocabularies/<language>.yaml, validated)."""
    return load_yaml(Path(directory) / f"{language}.yaml", Vocabulary)


def load_source(path: Path) -> SourceMapping:
    """Read and validate one mapping file; errors (ConfigError) name the file and the key.
    Each version of a file (its modification time and size) is parsed once per process: a
    release reads the mappings a dozen times, and YAML parsing cost 0.2 s a time."""
    stat = Path(path).stat()
    return _parse_source(Path(path).resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=512)
def _parse_source(path: Path, mtime_ns: int, size: int) -> SourceMapping:
    return load_yaml(path, SourceMapping)


def load_sources(directory: Path | None = None) -> dict[str, SourceMapping]:
    """Every registered source, by source_id (default: the packaged connectors/sources)."""
    directory = Path(directory or HERE / "sources")
    sources = [load_source(p) for p in sorted(directory.glob("*.yaml"))]
    return {s.source_id: s for s in sources}


def mapping_json_schema() -> str:
    """The JSON Schema of a source mapping (connectors/mapping.schema.json, written by
    `thb contracts schema`): editors validate a new provider's mapping while it is written.
    Validators that need more than one file (column names from the vocabulary) run at load."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **SourceMapping.model_json_schema()}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
