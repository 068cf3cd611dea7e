"""Overview: the latest quarter's headline numbers, with their intervals, against a year ago."""

import pandas as pd
from dash import html

from dashboards import theme
from dashboards.data import ANY, DIMENSIONS
from thb.periods import Period

name, path, title = "overview", "/", "Overview"
filters = ("area", "quarter")
intro = (
    "How many persons were recorded as presumed or identified victims of trafficking in the quarter, "
    "with the range (90 % interval) the true count lies in."
)


def _year_ago(quarter: str) -> str:
    """
    >>> _year_ago("2025-Q3")
    '2024-Q3'
    """
    q = Period.parse(quarter)
    return str(Period(q.year - 1, q.quarter))


def frame(data, state):
    ids = state["vintage"]
    quarters = [state["quarter"], _year_ago(state["quarter"])]
    status = data.cells("counts", ids, ref_area=state["area"], status=["_T", "presumed", "identified"])
    by_country = data.cells("counts", ids, ref_area=ANY)
    shown = pd.concat(
        [status[status.time_period.isin(quarters)], by_country[by_country.time_period == state["quarter"]]],
        ignore_index=True,
    )
    return shown.drop_duplicates(subset=["release_id", "ref_area", *DIMENSIONS]).reset_index(drop=True)


def figure(f, state):
    shown = f[(f.time_period == state["quarter"]) & (f.ref_area != "_T") & (f.status == "_T")]
    return theme.bars(shown, "ref_area", None, f"{state['quarter']}: persons recorded, by reporting country")


def _card(heading, cell, note=None):
    if cell is None:
        return html.Div(
            [html.Div(heading, className="card-heading"), html.Div("not published", className="card-value")],
            className="card",
        )
    flag = cell.obs_status == "u"
    return html.Div(
        [
            html.Div(heading, className="card-heading"),
            html.Div(
                f"{cell.obs_value:,}",
                className="card-value" + (" unreliable" if flag else ""),
                title=theme.UNRELIABLE if flag else "",
            ),
            html.Div(f"90 % interval {cell.ci_low:,}–{cell.ci_high:,}", className="card-interval"),
            html.Div(note or "", className="card-note"),
        ],
        className="card",
    )


def _cell(f, quarter, status):
    rows = f[(f.time_period == quarter) & (f.status == status) & (f.ref_area == f.ref_area.iloc[0] if len(f) else True)]
    return rows.iloc[0] if len(rows) else None


def extra(f, state, data):
    q, ago = state["quarter"], _year_ago(state["quarter"])
    area = f[f.status.isin(["_T", "presumed", "identified"]) & (f.ref_area == state["area"])]
    now, before = _cell(area, q, "_T"), _cell(area, ago, "_T")
    if now is not None and before is not None:
        change = (
            "higher than"
            if now.ci_low > before.ci_high
            else "lower than"
            if now.ci_high < before.ci_low
            else "not clearly different from"
        )
        trend = (
            f"{q} is {change} {ago} (intervals {'do not ' if change != 'not clearly different from' else ''}overlap)"
        )
    else:
        trend = f"{ago} is not in this release"
    cards = [
        _card(f"Persons recorded, {theme.label('ref_area', state['area'])}", now, trend),
        _card("Presumed victims", _cell(area, q, "presumed")),
        _card("Identified victims", _cell(area, q, "identified")),
        _card(f"A year ago ({ago})", before),
    ]
    est = data.estimates(state["vintage"])
    if len(est):
        e = est[est.ref_area == state["area"]].sort_values("time_period")
        if len(e):
            e = e.iloc[-1]
            cards.append(
                _card(
                    f"Estimated victims, {e.time_period} (seen and unseen)",
                    e,
                    f"{e.observed:,} recorded with a person key",
                )
            )
    return html.Div(cards, className="cards")
