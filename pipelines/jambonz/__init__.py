"""The jambonz source: one request (transport), a stream and its page as Arrow (streams), a
window's pages (pager), and a local simulator.

Knows HTTP and the API's quirks; never imports Dagster or DuckDB.
"""
