"""Hidden victims: the estimated number of victims, seen and unseen, against those recorded."""

import pandas as pd
from dash import html

from dashboards import theme

name, path, title = "hidden", "/hidden", "Hidden victims"
filters = ("area",)
intro = (
    "Most victims are never identified. Where several sources saw the same persons, multiple systems estimation "
    "estimates how many no source saw. The estimate and its interval are compared with the persons recorded with "
    "a person key (records without one cannot be matched across sources and are left out of the model)."
)


def frame(data, state):
    e = data.estimates(state["vintage"])
    return e[e.ref_area == state["area"]].reset_index(drop=True) if len(e) else e


def figure(f, state):
    if f.empty:
        return theme.empty("This release has no hidden-population estimate yet")
    seen = f.assign(
        obs_value=f.observed, ci_low=f.observed, ci_high=f.observed, obs_status="", series="Recorded with a person key"
    )
    estimated = f.assign(series="Estimated (seen and unseen)")
    return theme.bars(
        pd.concat([seen, estimated], ignore_index=True),
        "time_period",
        "series",
        f"{theme.label('ref_area', state['area'])}: victims recorded and estimated, by year (95 % intervals)",
        level="95 %",
    )


def extra(f, state, data):
    return (
        html.P(
            "Estimates come with the estimation release (annual, per country); see Privacy and method.",
            className="note",
        )
        if f.empty
        else None
    )
