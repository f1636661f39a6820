"""The warehouse's SQL files: the one loader of warehouse/<folder>/<name>.sql.

Folders: `schema/` (migrations NNN_name.sql, applied in order), `sql/` (the loader's statements,
named after their table and operation), `models/` (one model a file, named after its table),
`checks/` (one data check a file), `reports/` (read-only queries). Names are checked against a
pattern: a name is an identifier, never a value.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@cache
def sql(name: str, folder: str = "sql") -> str:
    """The text of warehouse/{folder}/{name}.sql."""
    if not _NAME.match(name):
        raise ValueError(f"bad SQL file name {name!r}")
    path = resources.files("warehouse").joinpath(folder, f"{name}.sql")
    if not path.is_file():
        raise KeyError(f"no SQL file warehouse/{folder}/{name}.sql")
    return path.read_text(encoding="utf-8")


def string_literal(value: str) -> str:
    """`value` as a SQL string literal (quotes doubled), for the one place DuckDB's grammar takes
    no parameter: the target of ATTACH (DuckDB 1.5). Refuses what a path or conninfo never holds."""
    if "\x00" in value or "\n" in value:
        raise ValueError("an ATTACH target holds no NUL or newline")
    return "'" + value.replace("'", "''") + "'"


def attach(name: str, target: str, **options: str) -> str:
    """warehouse/sql/{name}.sql, an ATTACH statement, with its `$target` (and each `$option`
    given, such as $data_path) written once each as a quoted literal."""
    lines = [line for line in sql(name).splitlines() if not line.startswith("--")]
    statement = "\n".join(lines)
    for key, value in {"target": target, **options}.items():
        if statement.count(f"${key}") != 1:
            raise ValueError(f"warehouse/sql/{name}.sql must name ${key} once")
        statement = statement.replace(f"${key}", string_literal(value))
    return statement


def migrations(*, lake: bool = False) -> list[tuple[int, str, str]]:
    """(version, name, DDL) of warehouse/schema/NNN_name.sql, in order. For a DuckLake, a file
    of the same name in schema/lake/ replaces one whose DDL DuckLake does not take, and one
    with no namesake (007_partition_by_month) is the lake's own."""
    schema = resources.files("warehouse").joinpath("schema")
    folders = [schema, schema.joinpath("lake")] if lake else [schema]
    chosen: dict[str, tuple[int, str, str]] = {}
    for folder in folders:  # the lake's folder last: its file wins
        for entry in folder.iterdir():
            m = _MIGRATION.match(entry.name)
            if m:
                ddl = entry.read_text(encoding="utf-8")
                chosen[entry.name] = (int(m.group(1)), m.group(2), ddl)
    return sorted(chosen.values())


def model_names() -> list[str]:
    """Every model: warehouse/models/<table>.sql."""
    folder = resources.files("warehouse").joinpath("models")
    return sorted(e.name[:-4] for e in folder.iterdir() if e.name.endswith(".sql"))
