"""The route: the eight countries on a map, coloured by the persons each recorded, by where
along the route they were exploited. Country shapes ship with the project (Natural Earth,
dashboards/assets/route_countries.geojson): nothing is fetched from the internet."""

import json
import math
from functools import cache
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from dashboards import theme

name, path, title = "route", "/route", "The route"
filters = ("quarter", "stage")
intro = (
    "Where victims were recorded (the reporting country) and where along the route they were exploited: in "
    "their country of origin, in a transit country, or at their destination. Greece, North Macedonia, Serbia "
    "and Bulgaria are transit countries; Austria, Germany, Sweden and Finland destinations."
)
SHAPES = Path(__file__).resolve().parent.parent / "assets" / "route_countries.geojson"
SCALE = "Cividis"  # perceptually uniform, readable with colour-vision deficiencies


@cache
def shapes() -> list[dict]:
    return json.loads(SHAPES.read_text(encoding="utf-8"))["features"]


def frame(data, state):
    f = data.cells(
        "counts",
        state["vintage"],
        ref_area=["GR", "MK", "RS", "BG", "AT", "DE", "SE", "FI"],
        route_stage=state["stage"],
    )
    return f[f.time_period == state["quarter"]].reset_index(drop=True)


def _centre(polygons) -> tuple[float, float]:
    ring = max((p[0] for p in polygons), key=len)
    return sum(x for x, _ in ring) / len(ring), sum(y for _, y in ring) / len(ring)


def figure(f, state):
    values = {r.ref_area: r for r in f.itertuples()}
    top = max([r.obs_value for r in values.values()] + [1])
    fig = go.Figure()
    for feature in shapes():
        iso = feature["properties"]["iso2"]
        cell = values.get(iso)
        colour = sample_colorscale(SCALE, [cell.obs_value / top])[0] if cell else "#e8e8e8"
        text = (
            (
                f"{theme.label('ref_area', iso)}: {cell.obs_value:,} (90 % interval {cell.ci_low:,}–{cell.ci_high:,})"
                + (f"<br><i>{theme.UNRELIABLE}</i>" if cell.obs_status == "u" else "")
            )
            if cell
            else None
        )
        xs, ys = [], []
        for polygon in feature["geometry"]["coordinates"]:  # one trace per country: parts split by None
            xs += [x for x, _ in polygon[0]] + [None]
            ys += [y for _, y in polygon[0]] + [None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                fill="toself",
                fillcolor=colour,
                mode="lines",
                line={"color": "#ffffff", "width": 0.8},
                hoveron="fills",
                hoverinfo="text" if cell else "skip",
                text=text,
                showlegend=False,
            )
        )
        if cell:
            x, y = _centre(feature["geometry"]["coordinates"])
            fig.add_annotation(
                x=x,
                y=y,
                text=f"<b>{iso}</b><br>{cell.obs_value:,}" + ("*" if cell.obs_status == "u" else ""),
                showarrow=False,
                font={"size": 12, "color": "#111"},
                bgcolor="rgba(255,255,255,0.8)",
            )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "colorscale": SCALE,
                "cmin": 0,
                "cmax": top,
                "color": [0],
                "colorbar": {"title": "persons", "thickness": 14},
            },
        )
    )
    stage = (
        "all stages" if state["stage"] == "_T" else f"exploited in {theme.label('route_stage', state['stage']).lower()}"
    )
    fig = theme._layout(fig, f"{state['quarter']}: persons recorded, {stage} (* low reliability)", "")
    fig.update_xaxes(visible=False, range=[-2, 42])
    fig.update_yaxes(visible=False, range=[33.5, 71], scaleanchor="x", scaleratio=1 / math.cos(math.radians(50)))
    fig.update_layout(height=640, plot_bgcolor="#cfe3f2")
    return fig


def extra(f, state, data):
    return None
