"""User-facing fronts: the Streamlit dashboard (app/main.py) and the `surglens` CLI (app/cli)."""
