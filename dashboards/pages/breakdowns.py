"""Breakdowns: form of exploitation, route stage, gender, age and their two-way tables."""

from dash import html

from dashboards import theme
from dashboards.data import ANY

name, path, title = "breakdowns", "/breakdowns", "Breakdowns"
filters = ("area", "quarter", "status", "table")
intro = (
    "Persons by one or two characteristics, in one quarter. Whiskers are 90 % intervals; hatched bars have "
    "low reliability."
)
TABLES = {
    "exploitation_form": ("exploitation_form",),
    "route_stage": ("route_stage",),
    "gender": ("gender",),
    "age_group": ("age_group",),
    "exploitation_form*gender": ("exploitation_form", "gender"),
    "exploitation_form*age_group": ("exploitation_form", "age_group"),
    "exploitation_form*route_stage": ("exploitation_form", "route_stage"),
    "gender*age_group": ("gender", "age_group"),
    "unaccompanied_child*exploitation_form": ("exploitation_form", "unaccompanied_child"),
    "smuggling_debt*exploitation_form": ("exploitation_form", "smuggling_debt"),
}


def table_label(key: str) -> str:
    """The name of a table of TABLES, for the selector and the title: its dimensions' names.

    >>> table_label("gender*age_group")
    'Gender × Age group'
    """
    return " × ".join(theme.dim_label(d) for d in TABLES[key])


def _status_applies(state) -> bool:
    return TABLES[state["table"]] == ("exploitation_form",)


def frame(data, state):
    dims = dict.fromkeys(TABLES[state["table"]], ANY)
    if _status_applies(state):
        dims["status"] = state["status"]
    f = data.cells("counts", state["vintage"], ref_area=state["area"], **dims)
    return f[f.time_period == state["quarter"]].reset_index(drop=True)


def figure(f, state):
    dims = TABLES[state["table"]]
    where = theme.label("ref_area", state["area"])
    status = (
        f", {theme.label('status', state['status']).lower()}s"
        if _status_applies(state) and state["status"] != "_T"
        else ""
    )
    return theme.bars(
        f,
        dims[0],
        dims[1] if len(dims) > 1 else None,
        f"{where}, {state['quarter']}{status}: persons by {table_label(state['table']).lower()}",
    )


def extra(f, state, data):
    if state["status"] != "_T" and not _status_applies(state):
        return html.P(
            "This table is published for all statuses together; status splits only the form of exploitation.",
            className="note",
        )
    return None
