"""Map an export's rows to the harmonised record, in SQL, from its mapping file.

Labels become codes through the source's vocabulary; a label the vocabulary does not know
becomes '?', a date that does not parse in the registered format becomes 1900-01-01, so
that the row contract (data_contracts/) reports them by row, never by value. Empty cells
of coded fields mean 'unknown'. Booleans stay 'yes'/'no'/'unknown' until loaded. A date
whose format is a year alone is 1 July of that year (docs/connectors.md).
"""

import re

from connectors.mapping import KIND_SCHEMA, FileSpec, FlagColumns, SourceMapping, field_list, normalise
from connectors.read import RECORD_NO
from data_contracts.codelists import codelists, codes, iso_countries, schema
from thb.sql import ident, literal

UNMAPPED, BAD_DATE = "?", "1900-01-01"
AGE_BAND = r"^([0-9]{1,3}) *(?:(?:-+|–) *([0-9]{1,3})|(\+))$"  # 9-17, 9--17, 9 – 17; 48+


def _map(pairs: dict[str, str]) -> str:
    return "MAP {" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in pairs.items()) + "}"


def _list(values: list[str]) -> str:
    return "([" + ", ".join(map(literal, values)) + "]::VARCHAR[])"


def _age_groups(years: str) -> str:
    bins = [(c, v.min, v.max) for c, v in codelists()["age_group"].codes.items() if v.min is not None]
    whens = " ".join(f"WHEN {years} BETWEEN {lo} AND {hi} THEN {literal(c)}" for c, lo, hi in bins)
    return f"CASE {whens} ELSE {literal(UNMAPPED)} END"


def _band_part(cell: str, group: int) -> str:
    return f"regexp_extract({cell}, {literal(AGE_BAND)}, {group})"


def _age_band(cell: str) -> str:
    """An age band as the age group that holds most of its years, ties to the younger group
    (docs/connectors.md). An open band (48+) ends where the oldest group ends; a label that is
    no band, or a band no group holds, is UNMAPPED. Unrolled: a lambda over the groups took
    five times as long."""
    groups = sorted((v.min, v.max, c) for c, v in codelists()["age_group"].codes.items() if v.min is not None)
    lo, oldest = f"try_cast({_band_part(cell, 1)} AS INTEGER)", groups[-1][1]
    hi = f"CASE WHEN {_band_part(cell, 3)} = '+' THEN {oldest} ELSE try_cast({_band_part(cell, 2)} AS INTEGER) END"
    years_in = {c: f"greatest(0, least({hi}, {g_hi}) - greatest({lo}, {g_lo}) + 1)" for g_lo, g_hi, c in groups}
    most = f"greatest({', '.join(years_in.values())})"
    first_of_most = " ".join(f"WHEN {years} = {most} THEN {literal(c)}" for c, years in years_in.items())
    return f"CASE WHEN {lo} <= {hi} AND {most} > 0 THEN CASE {first_of_most} END ELSE {literal(UNMAPPED)} END"


def year_only(date_format: str) -> bool:
    """Whether a date format holds a year and nothing else of the date (HTCDS's
    yearOfRegistration): such a date is read as 1 July of its year.

    >>> year_only("%Y"), year_only("FY%Y"), year_only("%m/%Y"), year_only("%d.%m.%Y")
    (True, True, False, False)
    """
    return re.fullmatch(r"[^%]*%[Yy][^%]*", date_format) is not None


def _date(spec: FileSpec, cell: str) -> str:
    """A date in the registered format; a year alone is 1 July, the middle of the year, so
    that a year's count is right (its quarter is Q3). Outside 1900-2199 is as invalid as
    unparseable (and out of pandas' range): BAD_DATE, which the row contract reports."""
    parsed = f"try_strptime({cell}, {literal(spec.date_format)})"
    if year_only(spec.date_format):
        parsed = f"({parsed} + INTERVAL 6 MONTH)"
    parsed += "::DATE"
    return (
        f"CASE WHEN {cell} IS NULL THEN NULL WHEN {parsed} BETWEEN DATE '1900-01-02' AND DATE '2199-12-31' "
        f"THEN {parsed} ELSE DATE '{BAD_DATE}' END"
    )


def _country(source: SourceMapping, spec: FileSpec, cell: str) -> str:
    """An ISO code of the registered kind as its alpha-2 code; the source's spellings of
    'not known' (CTDC writes -99) are NULL, as an empty cell is."""
    wanted = 3 if spec.country_codes == "alpha3" else 2
    valid = {k: v for k, v in iso_countries().items() if len(k) == wanted}
    unknown = _list([normalise(label) for label in source.unknown_labels()])
    return (
        f"CASE WHEN {cell} IS NULL OR list_contains({unknown}, lower({cell})) THEN NULL "
        f"ELSE coalesce({_map(valid)}[upper({cell})], {literal(UNMAPPED)}) END"
    )


def _cell(column: str) -> str:
    return f"nullif(trim({ident(column)}), '')"


def _flag(column: str, labels: str) -> str:
    """A flag cell as yes, no, unknown (empty or a spelling of 'not known') or UNMAPPED."""
    cell = _cell(column)
    return f"CASE WHEN {cell} IS NULL THEN 'unknown' ELSE coalesce({labels}[lower({cell})], {literal(UNMAPPED)}) END"


def _any(flags: list[str], state: str) -> str:
    return " OR ".join(f"{flag} = {literal(state)}" for flag in flags)


def _from_flags(source: SourceMapping, rule: FlagColumns) -> str:
    """The code of the flags that hold 1 (FlagColumns says the rule); a flag that holds
    anything but 1, 0 and the source's yes/no and unknown labels makes it UNMAPPED.
    Unrolled: list lambdas over the flags took ten times as long."""
    labels = _map({"1": "yes", "0": "no"} | source.value_map("flag"))
    flags = {column: _flag(column, labels) for column in rule.columns}
    held = {  # code → whether a flag of the code holds 1
        code: _any([flags[c] for c, of in rule.columns.items() if of == code], "yes")
        for code in dict.fromkeys(rule.columns.values())
    }
    codes_held = " + ".join(f"({one})::INTEGER" for one in held.values())
    the_code = " ".join(f"WHEN {one} THEN {literal(code)}" for code, one in held.items())
    return (
        f"CASE WHEN {_any(list(flags.values()), UNMAPPED)} THEN {literal(UNMAPPED)} "
        f"WHEN {codes_held} > 1 THEN {literal(rule.several)} {the_code} "
        f"WHEN {_any(list(flags.values()), 'unknown')} THEN 'unknown' ELSE {literal(rule.none)} END"
    )


def field_expr(source: SourceMapping, spec: FileSpec, field: str) -> str:
    """The SQL expression of one harmonised field, over the raw export's columns."""
    kinds = field_list(spec.kind)
    ftype = schema(KIND_SCHEMA[spec.kind]).columns[field].type
    codelist = kinds[field]
    if field in spec.constants:
        return literal(spec.constants[field])
    if field in spec.from_flags:
        return _from_flags(source, spec.from_flags[field])
    if field not in spec.columns:
        return literal("unknown") if codelist and codelist != "country" and "unknown" in codes(codelist) else "NULL"
    cell = _cell(source.column(spec, field))
    if ftype == "date":
        return _date(spec, cell)
    if ftype == "country":
        return _country(source, spec, cell)
    if field == "age_group" and spec.age_in_years:
        years = f"try_cast({cell} AS INTEGER)"
        return (
            f"CASE WHEN {cell} IS NULL THEN 'unknown' WHEN NOT regexp_full_match({cell}, '[0-9]{{1,3}}') "
            f"THEN {literal(UNMAPPED)} ELSE {_age_groups(years)} END"
        )
    if codelist:
        empty = literal("unknown") if "unknown" in codes(codelist) else "NULL"
        unlabelled = _age_band(cell) if field == "age_group" and spec.age_bands else literal(UNMAPPED)
        return (
            f"CASE WHEN {cell} IS NULL THEN {empty} "
            f"ELSE coalesce({_map(source.value_map(codelist))}[lower({cell})], {unlabelled}) END"
        )
    return cell


def harmonise_sql(source: SourceMapping, spec: FileSpec, relation: str) -> str:
    """SELECT file_id, record_no, the harmonised fields and file_record FROM relation,
    a table of the source's raw rows with their file_id and record_no."""
    context = {"source_id": source.source_id, "source_type": source.source_type, "reporting_country": source.country}
    fields = []
    for field in schema(KIND_SCHEMA[spec.kind]).columns:
        expr = literal(context[field]) if field in context else field_expr(source, spec, field)
        fields.append(f"{expr} AS {field}")
    record_id = field_expr(source, spec, "record_id")
    return (  # expressions from the validated mapping, names and codes quoted
        f"SELECT file_id, {RECORD_NO} AS record_no, {', '.join(fields)}, "  # noqa: S608
        f"file_id || '/' || coalesce({record_id}, '') AS file_record FROM {relation}"
    )
