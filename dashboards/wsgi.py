"""The dashboard for a production WSGI server (docs/dashboard.md):

THB_RELEASE=/srv/thb/release/thb_release.duckdb gunicorn --workers 4 --bind 127.0.0.1:8050 dashboards.wsgi:server
"""

from dashboards.app import create_app

server = create_app().server
