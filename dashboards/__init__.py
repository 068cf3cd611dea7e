"""The rapporteurs' dashboard: Dash and Plotly on the public release database, read-only.

Nothing here touches the private warehouse: the app opens release/thb_release.duckdb only,
and imports no module of pipelines/, connectors/, dp/ or simulator/ (a test proves it).
"""
