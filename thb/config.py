"""Configuration as validated data: every YAML file the code reads is parsed into a pydantic
model (a ConfigModel: unknown keys are refused), so that a broken file fails when it is
loaded, not somewhere downstream, with a message naming the file, the key and what was
expected.

>>> class Budget(ConfigModel):
...     rho: float
...     '''zCDP spent by one release.'''
>>> check({"rho": "high"}, Budget, "budget.yaml")
Traceback (most recent call last):
...
thb.errors.ConfigError: invalid configuration budget.yaml (Budget), 1 error:
  rho: Input should be a valid number, unable to parse string as a number; got 'high'
>>> check({"rho": 0.5, "roh": 1}, Budget, "budget.yaml")
Traceback (most recent call last):
...
thb.errors.ConfigError: invalid configuration budget.yaml (Budget), 1 error:
  roh: unknown key (did you mean rho?); expected one of: rho
"""

import difflib
import types
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from thb.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
MAX_ERRORS = 20  # more are counted, not listed: one typo can cascade


class ConfigModel(BaseModel):
    """Base of the configuration models: unknown keys are errors (a typo must not pass as
    a default), values are read-only once loaded, attribute docstrings are descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def load_yaml(path: Path | str, model: type[M]) -> M:
    """Read one YAML file into `model`; raise ConfigError naming the file, the key and what
    was expected if it cannot be read, is not YAML or does not match the model."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"configuration {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"configuration {path} is not valid YAML{where}: {problem}") from None
    return check(data, model, path)


def check(data: object, model: type[M], source: Path | str) -> M:
    """Validate already parsed data against `model`; `source` names it in the error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, model, source)) from None


def describe(exc: ValidationError, model: type[BaseModel], source: Path | str) -> str:
    """One line per error: the key (pydantic's location, dotted; [i] for list items), what
    was expected and what was found."""
    errors = exc.errors(include_url=False)
    lines = [f"invalid configuration {source} ({model.__name__}), {len(errors)} error{'s' * (len(errors) > 1)}:"]
    for e in errors[:MAX_ERRORS]:
        lines.append(f"  {key_path(e['loc'])}: {_expectation(e, model)}")
    if len(errors) > MAX_ERRORS:
        lines.append(f"  … and {len(errors) - MAX_ERRORS} more")
    return "\n".join(lines)


def key_path(loc: tuple[int | str, ...]) -> str:
    """('countries', 'GR', 'hidden_ratio') → countries.GR.hidden_ratio; list items as [i].

    >>> key_path(("files", 0, "pattern")), key_path(())
    ('files[0].pattern', '(the whole file)')
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(the whole file)"


def _expectation(error: Any, model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        if not allowed:
            return "unknown key"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown key{hint}; expected one of: {', '.join(allowed)}"
    if error["type"] == "missing":
        return "missing (a required key)"
    msg = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    found = error.get("input")
    if isinstance(found, dict | list) or found is None:
        return msg  # a whole section: the message says what is wrong with it
    shown = repr(found)
    if shown in msg:  # a validator's own message already quotes the value
        return msg
    return f"{msg}; got {shown if len(shown) <= 60 else shown[:57] + '...'}"


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed at a location: the fields of the model found there by following
    the annotations (dict values, list items, optional members), or [] if there is none."""
    tp: Any = model
    for part in (*loc, None):
        while True:  # unwrap until a model or a container
            origin = get_origin(tp)
            if origin is Annotated:
                tp = get_args(tp)[0]
            elif origin in (Union, types.UnionType):
                members = [a for a in get_args(tp) if a is not type(None)]
                if len(members) != 1:
                    return []
                tp = members[0]
            elif isinstance(tp, type) and issubclass(tp, RootModel):
                tp = tp.model_fields["root"].annotation
            else:
                break
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) in (list, tuple):
            tp = get_args(tp)[0]
        else:
            return []
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []
