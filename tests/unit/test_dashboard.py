"""The dashboard without a release: it says so."""

import json

from dashboards.app import create_app
from tests.helpers import dash_call


def test_without_a_release_the_app_says_so(tmp_path):
    client = create_app(tmp_path / "none.duckdb")
    out = dash_call(client, [("page", "children")], [("url", "pathname", "/")], [("url", "search", "")])
    assert "No release yet" in json.dumps(out)
