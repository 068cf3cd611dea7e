"""The dashboard's pages, in navigation order. Each module declares its path, title,
filters and three functions: frame (exactly the published cells it shows), figure, and
extra (cards or notes beside the figure, or None)."""

from dashboards.pages import breakdowns, coverage, gap, hidden, method, overview, route, trends

PAGES = [overview, trends, breakdowns, route, gap, hidden, coverage, method]
BY_PATH = {p.path: p for p in PAGES}
