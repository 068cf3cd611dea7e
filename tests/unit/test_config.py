"""Configuration as validated data (thb/config.py): every YAML file the code reads loads into
its model, and a broken copy fails at load with a message naming the file and the key."""

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from pydantic import BaseModel, RootModel
from typer.testing import CliRunner

from connectors.mapping import (
    VOCABULARIES,
    SourceMapping,
    Vocabulary,
    load_source,
    load_vocabulary,
    mapping_json_schema,
)
from data_contracts.build import PiiScreen, pii
from data_contracts.codelists import CodeLists, Schema, codelists, schemas
from dp.spec import ReleaseSpec, release_spec
from pipelines.link import Linkage, linkage
from simulator.world import WorldParams, params
from thb.cli import _clear_errors, app
from thb.config import ConfigModel, key_path, load_yaml
from thb.errors import ConfigError, ThbError, UserInputError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "connectors" / "sources"
MODELS = [CodeLists, Schema, PiiScreen, WorldParams, Linkage, ReleaseSpec, SourceMapping, Vocabulary]


def _vocabulary(path: Path) -> Vocabulary:
    return load_vocabulary(path.stem, directory=path.parent)


# name: (the committed file, the loader the product uses, given a path)
FILES: dict[str, tuple[Path, Callable[[Path], Any]]] = {
    "codelists": (ROOT / "data_contracts/codelists.yaml", codelists),
    "schema": (ROOT / "data_contracts/schema.yaml", schemas),
    "pii": (ROOT / "data_contracts/pii.yaml", pii),
    "world": (ROOT / "simulator/world.yaml", params),
    "linkage": (ROOT / "pipelines/linkage.yaml", linkage),
    "release_spec": (ROOT / "dp/release_spec.yaml", release_spec),
    "mapping": (SOURCES / "DE-POL-BKA.yaml", load_source),
    "vocabulary": (VOCABULARIES / "de.yaml", _vocabulary),
}

# (file, text to replace, its replacement, the key the message must name, what it must say)
BROKEN = [
    ("codelists", "route_role: transit}", "route_rol: transit}", "reporting_country.codes.GR.route_rol", "route_role?"),
    ("codelists", "min: 0,", "min: none,", "age_group.codes.0-11.min", "valid integer"),
    ("codelists", "role: destination}", "role: origin}", "reporting_country.codes.AT.route_role", "or 'destination'"),
    ("schema", "table: harmonised.case", "tabel: harmonised.case", "case_record.tabel", "one of: table, columns"),
    ("schema", "required: true}", "required: maybe}", "case_record.columns.source_id.required", "valid boolean"),
    ("schema", "codelist: gender,", "codelist: genders,", "case_record.columns.gender.codelist", "no code list"),
    ("pii", "id_pattern:", "id_patern:", "id_patern", "did you mean id_pattern?"),
    ("pii", "id_pattern: '^", "id_pattern: '^(", "id_pattern", "not a regular expression"),
    ("world", "hidden_ratio: 8.0", "hiden_ratio: 8.0", "countries.GR.hiden_ratio", "did you mean hidden_ratio?"),
    ("world", "hidden_ratio: 8.0", "hidden_ratio: eight", "countries.GR.hidden_ratio", "valid number"),
    ("world", "sexual: 0.40", "sexual: -0.40", "forms.sexual", "greater than or equal to 0"),
    ("world", "  ngo: {base", "  nog: {base", "detection", "['nog'] are not source types"),
    ("world", "destinations: {DE", "destinations: {GR", "onward.destinations", "['GR'] are not destination countries"),
    ("linkage", "source_type_precedence:", "source_type_precedance:", "source_type_precedance", "precedence?"),
    ("linkage", "asylum, ngo]", "asylum]", "source_type_precedence", "every source type exactly once"),
    ("release_spec", "grace_days: 30", "grace_days: a month", "calendar.grace_days", "valid integer"),
    ("release_spec", "first_quarter: 2023-Q1", "first_quarter: 2023", "calendar.first_quarter", "is a quarter"),
    ("release_spec", "rho_per_year: 1.0", "rho_per_yaer: 1.0", "budget.rho_per_yaer", "did you mean rho_per_year?"),
    ("mapping", "  date_format:", "  date_fromat:", "files[0].date_fromat", "did you mean date_format?"),
    ("mapping", "  format: csv", "  format: xls", "files[0].format", "'csv', 'xlsx' or 'jsonl'"),
    ("mapping", "source_type: police", "source_type: polizei", "source_type", "source_type must be one of"),
    ("vocabulary", "name: German", "name: [German]", "name", "valid string"),
    ("vocabulary", "unknown: [k.A.", "unkown: [k.A.", "unkown", "did you mean unknown?"),
    ("vocabulary", "Zwangsheirat: forced_marriage", "Zwangsheirat: forced_mariage", "values", "not codes of the list"),
]


def _broken_copy(tmp_path: Path, name: str, old: str, new: str) -> tuple[Path, Callable[[Path], Any]]:
    committed, loader = FILES[name]
    text = committed.read_text(encoding="utf-8")
    assert old in text, f"{committed.name} changed: update this test's edit"
    path = tmp_path / committed.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path, loader


@pytest.mark.parametrize("name", FILES)
def test_each_committed_file_loads(name):
    path, loader = FILES[name]
    assert isinstance(loader(path), BaseModel | dict)


def test_every_mapping_and_vocabulary_loads():
    for path in SOURCES.glob("*.yaml"):
        assert load_source(path).source_id == path.stem
    for path in VOCABULARIES.glob("*.yaml"):
        assert _vocabulary(path).language == path.stem


@pytest.mark.parametrize(("name", "old", "new", "key", "expected"), BROKEN, ids=[f"{b[0]}:{b[3]}" for b in BROKEN])
def test_a_broken_file_fails_at_load_naming_file_and_key(tmp_path, name, old, new, key, expected):
    path, loader = _broken_copy(tmp_path, name, old, new)
    with pytest.raises(ConfigError) as failure:
        loader(path)
    message = str(failure.value)
    assert str(path) in message
    assert f"\n  {key}: " in message, message
    assert expected in message, message


def test_yaml_syntax_and_missing_files_are_config_errors(tmp_path):
    path = tmp_path / "linkage.yaml"
    path.write_text("source_type_precedence: [police, ngo\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"linkage\.yaml is not valid YAML, line 2"):
        linkage(path)
    with pytest.raises(ConfigError, match=r"nowhere\.yaml cannot be read"):
        load_yaml(tmp_path / "nowhere.yaml", Linkage)


def test_config_error_is_a_user_input_error():
    assert issubclass(ConfigError, UserInputError)
    assert issubclass(UserInputError, ThbError)
    assert ConfigError.exit_code == UserInputError.exit_code == 2


def test_the_cli_reports_a_config_error_in_one_line_with_its_exit_code():
    with pytest.raises(typer.Exit) as stopped, _clear_errors(verbose=False):
        raise ConfigError("invalid configuration x.yaml (Linkage), 1 error:\n  key: expected")
    assert stopped.value.exit_code == ConfigError.exit_code


def _nested_models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found, todo = set(), [model]
    while todo:
        m = todo.pop()
        if m in found:
            continue
        found.add(m)
        annotations = [f.annotation for f in m.model_fields.values()]
        while annotations:
            a = annotations.pop()
            if isinstance(a, type) and issubclass(a, BaseModel):
                todo.append(a)
            annotations.extend(get_args(a))
    return found


def test_every_config_model_forbids_unknown_keys():
    for model in set().union(*(_nested_models(m) for m in MODELS)):
        if issubclass(model, RootModel):  # a table by name: its keys are data
            continue
        assert issubclass(model, ConfigModel), model
        assert model.model_config.get("extra") == "forbid", model


def test_key_paths_read_like_the_yaml():
    assert key_path(("countries", "GR", "hidden_ratio")) == "countries.GR.hidden_ratio"
    assert key_path(("files", 0, "columns", "gender")) == "files[0].columns.gender"


def test_the_committed_mapping_schema_is_up_to_date():
    committed = (ROOT / "connectors/mapping.schema.json").read_text(encoding="utf-8")
    assert committed == mapping_json_schema(), "run: thb contracts schema --out connectors/mapping.schema.json"


def test_every_mapping_points_editors_at_the_schema():
    for path in SOURCES.glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../mapping.schema.json", path.name


def test_the_committed_mappings_pass_the_schema_an_editor_applies():
    jsonschema = pytest.importorskip("jsonschema")
    import json

    import yaml

    validator = jsonschema.Draft202012Validator(json.loads(mapping_json_schema()))
    for path in SOURCES.glob("*.yaml"):
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))), path.name
    typo = yaml.safe_load((SOURCES / "DE-POL-BKA.yaml").read_text(encoding="utf-8")) | {"sourcetype": "police"}
    assert any("sourcetype" in e.message for e in validator.iter_errors(typo))


def test_thb_contracts_schema_prints_or_writes_it(tmp_path):
    printed = CliRunner().invoke(app, ["contracts", "schema"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == mapping_json_schema()
    out = tmp_path / "mapping.schema.json"
    written = CliRunner().invoke(app, ["contracts", "schema", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == mapping_json_schema()
