"""The Dash app: a header with the pages and the release selector, one page at a time.

Filters live in the URL (?release=…&area=…), so a view can be shared; every page's cells
can be downloaded as CSV, with the release id and a citation line. Only the public release
database is read, read-only.

>>> app = create_app(Path("/nonexistent/thb_release.duckdb"))
>>> app.title
'THB Observatory'
"""

import os
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from dash import Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component

from dashboards import theme
from dashboards.data import Release
from dashboards.pages import BY_PATH, PAGES
from dashboards.pages.breakdowns import TABLES, table_label
from data_contracts.codelists import codes

AREAS = ["_T", *codes("reporting_country")]
DEFAULTS = {"area": "_T", "areas": ["_T"], "status": "_T", "table": "exploitation_form", "stage": "transit"}
CHOICES = {
    "area": AREAS,
    "areas": AREAS,
    "status": ["_T", "presumed", "identified"],
    "table": list(TABLES),
    "stage": ["_T", *codes("route_stage")],
}
FILTER_LABELS = {
    "release": "Release",
    "area": "Country",
    "areas": "Countries",
    "quarter": "Quarter",
    "status": "Status",
    "table": "Table",
    "stage": "Exploited in",
}


def default_release_path() -> Path:
    """$THB_RELEASE, else thb_release.duckdb in the release folder of $THB_DATA_DIR (default ./data)."""
    data = Path(os.environ.get("THB_DATA_DIR", "data"))
    return Path(os.environ.get("THB_RELEASE", data / "release" / "thb_release.duckdb"))


def resolve(page, params: dict, data: Release) -> dict:
    """The full state of a page from its (possibly partial or stale) URL parameters."""
    releases = data.releases()
    known = set(releases.release_id)
    release = params.get("release") if params.get("release") in known else releases.release_id.iloc[0]
    vintage = data.vintage(release)
    quarters = data.quarters(vintage)
    state = {"release": release, "vintage": vintage, "quarters": quarters, "releases": list(releases.release_id)}
    for f in page.filters:
        value = params.get(f)
        if f == "quarter":
            state[f] = value if value in quarters else quarters[-1]
        elif f == "areas":
            chosen = [a for a in (value.split(",") if isinstance(value, str) else value or []) if a in AREAS]
            state[f] = chosen or DEFAULTS[f]
        else:
            state[f] = value if value in CHOICES[f] else DEFAULTS[f]
    return state


def controls_of(page) -> tuple[str, ...]:
    """A page's controls: the release selector (latest by default), then its filters."""
    return ("release", *page.filters)


def _options(name: str, state: dict) -> list[dict]:
    if name == "release":
        return [{"label": r + (" (latest)" if i == 0 else ""), "value": r} for i, r in enumerate(state["releases"])]
    if name == "quarter":
        return [{"label": q, "value": q} for q in reversed(state["quarters"])]
    if name == "table":
        return [{"label": table_label(t), "value": t} for t in TABLES]
    dim = {"area": "ref_area", "areas": "ref_area", "status": "status", "stage": "route_stage"}[name]
    return [
        {"label": "All stages" if name == "stage" and c == "_T" else theme.label(dim, c), "value": c}
        for c in CHOICES[name]
    ]


def control(page, name: str, state: dict):
    """One control of a page, labelled and set to `state`, with id <page>-<name>: status and
    stage are radio buttons in a fieldset named by its legend, the others dropdowns (several
    countries may be chosen for `areas`)."""
    cid = f"{page.name}-{name}"
    widget: Component
    if name in ("status", "stage"):
        widget = dcc.RadioItems(id=cid, options=_options(name, state), value=state[name], inline=True)
    else:
        widget = dcc.Dropdown(
            id=cid,
            options=_options(name, state),
            value=state[name],
            clearable=False,
            multi=name == "areas",
            searchable=False,
        )
    if name in ("status", "stage"):  # a group of radio buttons: a fieldset named by its legend
        return html.Fieldset([html.Legend(FILTER_LABELS[name]), widget], className=f"control control-{name}")
    return html.Div([html.Label(FILTER_LABELS[name], htmlFor=cid), widget], className=f"control control-{name}")


def page_layout(page, state: dict):
    """A page as first drawn: title, introduction, controls, then empty slots for the graph and
    the extra content, which the page's callback fills, and the CSV download button."""
    return html.Div(
        [
            html.H2(page.title),
            html.P(page.intro, className="intro"),
            html.Div([control(page, f, state) for f in controls_of(page)], className="controls"),
            dcc.Loading(
                dcc.Graph(
                    id=f"{page.name}-graph",
                    config={"displaylogo": False, "toImageButtonOptions": {"filename": f"thb-{page.name}"}},
                ),
                type="dot",
            ),
            html.Div(id=f"{page.name}-extra"),
            html.Div(
                [
                    html.Button(
                        "Download the cells shown (CSV)", id=f"{page.name}-download-button", className="download"
                    ),
                    dcc.Download(id=f"{page.name}-download"),
                ],
                className="download-row",
            ),
        ],
        className="page",
    )


def citation(data: Release, state: dict, page) -> str:
    """The comment lines that head a downloaded CSV: the release and when it was published,
    the page, how to read the cells, and how to cite them."""
    rel = data.releases().set_index("release_id").loc[state["release"]]
    return (
        f"# THB Observatory, release {state['release']} (published {rel.published_at}). {page.title}. "
        f"Differentially private counts; intervals at 90 %; obs_status u = low reliability.\n"
        f"# Cite as: THB Observatory ({str(rel.published_at)[:4]}). {page.title}, release {state['release']}.\n"
    )


def search_of(page, state: dict) -> str:
    """The URL query of a page's state: the release, then each filter; several countries are
    joined by commas, as `resolve` reads them back.

    >>> from dashboards.pages import trends
    >>> search_of(trends, {"release": "2025-Q2.1", "areas": ["GR", "RS"], "status": "_T"})
    '?release=2025-Q2.1&areas=GR%2CRS&status=_T'
    """
    params = {"release": state["release"]}
    for f in page.filters:
        params[f] = ",".join(state[f]) if isinstance(state[f], list) else state[f]
    return "?" + urlencode(params)


def create_app(release_path: Path | None = None) -> Dash:
    """The dashboard on the release database at release_path (default: $THB_RELEASE, or
    $THB_DATA_DIR/release/thb_release.duckdb)."""
    data = Release(release_path or default_release_path())
    app = Dash(
        __name__,
        title="THB Observatory",
        suppress_callback_exceptions=True,
        serve_locally=True,
        assets_folder=str(Path(__file__).parent / "assets"),
        eager_loading=True,  # plotly.js loads with the other bundles, not after the graph mounts
        update_title=None,  # type: ignore[arg-type]  # None: the tab title stays while updating (documented)
    )
    nav = [dcc.Link(p.title, href=p.path, id=f"nav-{p.name}", className="nav-link") for p in PAGES]
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                html.Div(
                    [
                        html.H1("THB Observatory"),
                        html.P(
                            "Presumed and identified victims of trafficking in human beings along the Balkan route",
                            className="tagline",
                        ),
                    ],
                    className="brand",
                ),
                className="header",
            ),
            html.Nav(nav, className="nav"),
            html.Main(id="page"),
            html.Footer(
                "Differentially private statistics: every number is a published cell of the release, with its "
                "interval (90 %; 95 % for the estimates of hidden victims). No personal data is used here.",
                className="footer",
            ),
        ]
    )

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def render(pathname, search):
        if not data.available() or "counts" not in data.tables():
            return html.Div(
                [
                    html.H2("No release yet"),
                    html.P(f"No published release was found at {data.path}. Run `thb pipeline run` to publish one."),
                ]
            )
        page = BY_PATH.get(pathname)
        if page is None:
            return html.Div([html.H2("Page not found"), dcc.Link("Go to the overview", href="/")])
        params = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
        return page_layout(page, resolve(page, params, data))

    @app.callback([Output(f"nav-{p.name}", "href") for p in PAGES], Input("url", "search"))
    def keep_release_in_links(search):
        release = parse_qs((search or "").lstrip("?")).get("release")
        return [p.path + (f"?{urlencode({'release': release[0]})}" if release else "") for p in PAGES]

    for page in PAGES:
        _register(app, page, data)
    return app


def _register(app: Dash, page, data: Release) -> None:
    names = controls_of(page)

    def state_of(values, view):
        return resolve(page, dict(zip(names, values, strict=True)), view)

    @app.callback(
        Output(f"{page.name}-graph", "figure"),
        Output(f"{page.name}-extra", "children"),
        Output("url", "search", allow_duplicate=True),
        *[Input(f"{page.name}-{f}", "value") for f in names],
        prevent_initial_call="initial_duplicate",
    )
    def update(*values):
        with data.snapshot() as view:
            state = state_of(values, view)
            frame = page.frame(view, state)
            return page.figure(frame, state), page.extra(frame, state, view), search_of(page, state)

    @app.callback(
        Output(f"{page.name}-download", "data"),
        Input(f"{page.name}-download-button", "n_clicks"),
        *[State(f"{page.name}-{f}", "value") for f in names],
        prevent_initial_call=True,
    )
    def download(_, *values):
        with data.snapshot() as view:
            state = state_of(values, view)
            frame = page.frame(view, state)
            cite = citation(view, state, page)
        return {
            "content": cite + frame.to_csv(index=False, lineterminator="\n"),
            "filename": f"thb-{page.name}-{state['release']}.csv",
            "type": "text/csv",
        }
