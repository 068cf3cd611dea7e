"""The rapporteurs' Dash dashboard on the public release database (the dashboard issue)."""
