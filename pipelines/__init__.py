"""Dagster side of the jambonz warehouse: the only package that knows Dagster.

`pipelines.jambonz` is the source system (HTTP and the API's quirks, no Dagster, no DuckDB);
`warehouse` is DuckDB and Arrow (no HTTP, no Dagster). Modules here wire the two together.
"""
