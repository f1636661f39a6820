"""The DuckDB warehouse of call records: schema, loading and models.

Knows DuckDB and Arrow; never imports HTTP clients or Dagster.
"""
