"""Labels, palette and figure builders shared by the pages. Every number drawn carries its
interval; low-reliability cells are hatched (bars) or hollow (lines) and explained on hover."""

import plotly.graph_objects as go

from data_contracts.codelists import codelists

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
LISTS = {"ref_area": "reporting_country", "unaccompanied_child": "flag", "smuggling_debt": "flag"}
TOTAL_LABEL = {"ref_area": "All eight countries"}
UNRELIABLE = "low reliability: the interval is wide for the value; read it as a range"
LEVEL = "90 %"


def label(dim: str, code: str) -> str:
    """The English label of a code (from data_contracts/codelists.yaml)."""
    if code == "_T":
        return TOTAL_LABEL.get(dim, "Total")
    lst = codelists().get(LISTS.get(dim, dim))
    return lst.codes[code].label if lst else str(code)  # periods, series names: as they are


def dim_label(dim: str) -> str:
    """The English name of a dimension: its code list's label, "Country" for ref_area.

    >>> dim_label("ref_area"), dim_label("exploitation_form")
    ('Country', 'Form of exploitation')
    """
    return {"ref_area": "Country"}.get(dim, codelists()[LISTS.get(dim, dim)].label)


def hover(frame, dim: str, level: str = LEVEL) -> list[str]:
    """The hover text of each cell: its label, value and interval, and a note where its
    reliability is low (obs_status u).

    >>> import pandas as pd
    >>> cell = {"ref_area": ["GR"], "obs_value": [1234], "ci_low": [1100], "ci_high": [1370], "obs_status": [""]}
    >>> hover(pd.DataFrame(cell), "ref_area")
    ['Greece: 1,234 (90 % interval 1,100–1,370)']
    """
    return [
        f"{label(dim, c)}: {v:,} ({LEVEL} interval {lo:,}–{hi:,})" + (f"<br><i>{UNRELIABLE}</i>" if s == "u" else "")
        for c, v, lo, hi, s in zip(
            frame[dim], frame.obs_value, frame.ci_low, frame.ci_high, frame.obs_status, strict=True
        )
    ]


def _layout(fig: go.Figure, title: str, ytitle: str = "persons") -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 17}},
        template="plotly_white",
        colorway=PALETTE,
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        yaxis_title=ytitle,
        hoverlabel={"align": "left"},
        legend={"orientation": "h", "y": -0.18},
        font={"family": "system-ui, sans-serif"},
    )
    return fig


def bars(frame, x: str, group: str | None, title: str, ytitle: str = "persons", level: str = LEVEL) -> go.Figure:
    """Bars with their intervals as whiskers; hatched where reliability is low."""
    fig = go.Figure()
    groups = [("", frame)] if group is None else list(frame.groupby(group, sort=False))
    for i, (g, part) in enumerate(groups):
        fig.add_trace(
            go.Bar(
                x=[label(x, c) for c in part[x]],
                y=part.obs_value,
                name=label(group, g) if group else "persons",
                marker_color=PALETTE[i % len(PALETTE)],
                marker_pattern_shape=["/" if s == "u" else "" for s in part.obs_status],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": part.ci_high - part.obs_value,
                    "arrayminus": part.obs_value - part.ci_low,
                    "color": "#444",
                    "thickness": 1.2,
                },
                hovertext=hover(part, x, level),
                hoverinfo="text",
            )
        )
    fig.update_layout(barmode="group", showlegend=group is not None)
    return _layout(fig, title, ytitle)


def lines(frame, series: str, title: str, ytitle: str = "persons") -> go.Figure:
    """One line per series over time_period, with its interval as a band."""
    fig = go.Figure()
    for i, (s, part) in enumerate(frame.groupby(series, sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        x = list(part.time_period)
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=list(part.ci_high) + list(part.ci_low)[::-1],
                fill="toself",
                fillcolor=colour,
                opacity=0.15,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=part.obs_value,
                name=label(series, s),
                mode="lines+markers",
                line={"color": colour},
                hovertext=[
                    f"{label(series, s)}, {t}: " + h.split(": ", 1)[1]
                    for t, h in zip(x, hover(part, series), strict=True)
                ],
                hoverinfo="text",
                marker={
                    "size": 9,
                    "color": colour,
                    "symbol": ["circle-open" if u == "u" else "circle" for u in part.obs_status],
                },
            )
        )
    return _layout(fig, title, ytitle)


def empty(message: str) -> go.Figure:
    """A figure with no axes, only `message`: for a view with nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 15}, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", "")
