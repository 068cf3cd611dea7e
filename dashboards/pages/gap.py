"""The identification gap: presumed vs identified victims, and presumed victims per 1,000
asylum applicants screened."""

import pandas as pd
from dash import html
from scipy.stats import norm

from dashboards import theme
from dashboards.data import ANY

name, path, title = "gap", "/gap", "Identification gap"
filters = ("quarter",)
intro = (
    "Presumed victims were signalled by any actor; identified victims were formally identified by the competent "
    "authority. The rate per 1,000 screened compares presumed victims with the asylum applicants screened in the "
    "quarter (each counted once, however often screened)."
)
Z = norm.ppf(0.95)


def frame(data, state):
    cases = data.cells("counts", state["vintage"], ref_area=ANY, status=["presumed", "identified"])
    screened = data.cells("screenings", state["vintage"], ref_area=ANY)
    f = pd.concat([cases.assign(table="counts"), screened.assign(table="screenings")], ignore_index=True)
    return f[f.time_period == state["quarter"]].reset_index(drop=True)


def figure(f, state):
    cases = f[(f.table == "counts") & (f.ref_area != "_T")]
    return theme.bars(cases, "ref_area", "status", f"{state['quarter']}: presumed and identified victims, by country")


def rates(f) -> pd.DataFrame:
    """Presumed victims per 1,000 screened, with a delta-method interval: derived from two
    published cells, whose errors are independent."""
    presumed = f[(f.table == "counts") & (f.status == "presumed")].set_index("ref_area")
    screened = f[f.table == "screenings"].set_index("ref_area")
    rows = []
    for area in presumed.index.intersection(screened.index):
        p, s = presumed.loc[area], screened.loc[area]
        if s.obs_value <= 0:
            continue
        sp, ss = (p.ci_high - p.ci_low) / 2 / Z, (s.ci_high - s.ci_low) / 2 / Z
        rate = 1000 * p.obs_value / s.obs_value
        se = 1000 * ((sp / s.obs_value) ** 2 + (p.obs_value * ss / s.obs_value**2) ** 2) ** 0.5
        rows.append(
            {
                "ref_area": area,
                "presumed": p.obs_value,
                "screened": s.obs_value,
                "rate": rate,
                "low": max(0.0, rate - Z * se),
                "high": rate + Z * se,
                "unreliable": "u" in (p.obs_status, s.obs_status),
            }
        )
    return pd.DataFrame(rows)


def extra(f, state, data):
    r = rates(f)
    if r.empty:
        return html.P("No asylum screenings are published for this quarter.", className="note")
    head = html.Tr(
        [
            html.Th(h)
            for h in ("Country", "Presumed victims", "Applicants screened", "Per 1,000 screened (90 % interval)")
        ]
    )
    body = [
        html.Tr(
            [
                html.Td(theme.label("ref_area", x.ref_area)),
                html.Td(f"{x.presumed:,}"),
                html.Td(f"{x.screened:,}"),
                html.Td(f"{x.rate:.1f} ({x.low:.1f}–{x.high:.1f})" + (" *" if x.unreliable else "")),
            ]
        )
        for x in r.itertuples()
    ]
    return html.Div(
        [
            html.H3("Presumed victims per 1,000 asylum applicants screened"),
            html.Table([head, *body], className="table"),
            html.P(
                "Derived from two published cells each (not itself a published cell); * a cell with low reliability.",
                className="note",
            ),
        ]
    )
