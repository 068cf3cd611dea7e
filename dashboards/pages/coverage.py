"""Data coverage: which registered sources delivered a file for which quarter."""

import plotly.graph_objects as go

from dashboards import theme
from data_contracts.codelists import codes

name, path, title = "coverage", "/coverage", "Data coverage"
filters = ("area",)
intro = (
    "Which sources delivered their export for each quarter. A missing delivery lowers the counts of that "
    "quarter until it comes, in a later delivery or a revision. Record counts per source are not published."
)


def frame(data, state):
    c = data.coverage(state["vintage"])
    if c.empty:
        return c
    return c[c.ref_area == state["area"]] if state["area"] != "_T" else c


def figure(f, state):
    if f.empty:
        return theme.empty("No coverage information in this release")
    order = {c: i for i, c in enumerate(codes("reporting_country"))}
    f = f.assign(area_order=f.ref_area.map(order)).sort_values(["area_order", "source_id", "time_period"])
    sources = list(dict.fromkeys(f.ref_area + " · " + f.source_name))
    quarters = sorted(f.time_period.unique())
    z = (
        f.assign(row=f.ref_area + " · " + f.source_name)
        .pivot_table(index="row", columns="time_period", values="delivered", aggfunc="max")
        .reindex(sources)
    )
    fig = go.Figure(
        go.Heatmap(
            z=z[quarters].astype(float).to_numpy(),
            x=quarters,
            y=sources,
            zmin=0,
            zmax=1,
            colorscale=[[0, theme.PALETTE[1]], [1, theme.PALETTE[0]]],
            showscale=False,
            xgap=2,
            ygap=2,
            hovertemplate="%{y}<br>%{x}: %{customdata}<extra></extra>",
            customdata=[
                ["delivered" if v == 1 else "no file" for v in row] for row in z[quarters].astype(float).to_numpy()
            ],
        )
    )
    fig = theme._layout(fig, "Deliveries by source and quarter (blue: delivered, orange: no file)", "")
    fig.update_layout(height=max(360, 22 * len(sources) + 120), margin={"l": 330})
    fig.update_yaxes(autorange="reversed")
    return fig


def extra(f, state, data):
    return None
