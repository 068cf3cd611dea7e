"""Privacy and method: the budget each release spent, and how to read the numbers."""

import plotly.graph_objects as go
from dash import dcc

from dashboards import theme

name, path, title = "method", "/method", "Privacy and method"
filters = ()
intro = (
    "Every number is protected by differential privacy: random noise, of a size stated in advance, hides "
    "whether any one person is in the data. The privacy spent by each release is below."
)
EXPLAIN = """
**Reading a number.** Each number comes with a *90 % interval*, e.g. `142 (135–150)`. Over many releases, 90 in
100 such intervals contain the true count of persons the sources recorded. The interval is wide for small numbers:
the noise is the same for every cell, so it matters more where few persons are counted.

**Low reliability (`u`).** A number is marked (hatched bar, hollow marker, or `*`) when its interval is wider than
half the value, and every zero is: read it as "somewhere in the interval", not as a number. Zero cells are shown
too: a category's absence is itself protected, and under noise a zero is never certain.

**Adding numbers up.** Published tables add up: forms of exploitation sum to the total, countries to the route. But
the interval of a sum is not the sum of the intervals; where a total is published, use its own interval.

**Privacy.** The unit protected is one person in one country. A quarter's release spends ρ (zero-concentrated
differential privacy), also stated as ε at a tiny δ. A published release is never recomputed: asking again returns
the same numbers. Late records come in a new revision, which spends more budget, within a cap per quarter and year.
The promise to each person is below: the most one person's data has cost in a year, over every table and revision.
A person recorded in two countries counts as two persons here, and carries up to twice that.

**What is counted.** Persons recorded by NGOs, asylum services, police and other bodies, once per country, in the
quarter of their first record: not all victims, most of whom are never identified (see Hidden victims).
"""


def frame(data, state):
    rel = data.releases()
    return rel[rel.release_id.isin(state["vintage"])].sort_values("time_period").reset_index(drop=True)


def figure(f, state):
    if f.empty:
        return theme.empty("No release yet")
    fig = go.Figure(
        go.Bar(
            x=f.release_id,
            y=f.epsilon,
            marker_color=theme.PALETTE[0],
            hovertext=[
                f"{r.release_id}: ρ = {r.rho:.3g}, ε = {r.epsilon:.3g} at δ = {r.delta:g}" for r in f.itertuples()
            ],
            hoverinfo="text",
        )
    )
    return theme._layout(fig, "Privacy spent by each release (ε at δ = 10⁻⁶; lower is more private)", "ε")


def promise(f) -> str:
    """Per year, the most one person's data has cost over the releases shown (their newest statement)."""
    if f.empty or "person_rho_year" not in f:
        return ""
    stated = f.dropna(subset=["person_rho_year"]).assign(year=f.time_period.str[:4])
    newest = stated.sort_values(["published_at", "release_id"]).groupby("year").last()
    rows = "\n".join(
        f"| {year} | {r.person_rho_year:.3g} | {r.person_epsilon_year:.3g} |" for year, r in newest.iterrows()
    )
    return f"**The promise to each person, per year** (δ = 10⁻⁶)\n\n| year | ρ | ε |\n|---|---:|---:|\n{rows}\n"


def extra(f, state, data):
    return dcc.Markdown(promise(f) + EXPLAIN, className="explain")
