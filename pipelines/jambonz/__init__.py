"""The jambonz RecentCalls source: client, record normalization and a local simulator.

Knows HTTP and the API's quirks; never imports Dagster or DuckDB.
"""
