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


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, DDL) of warehouse/schema/NNN_name.sql, in order."""
    found = []
    for entry in resources.files("warehouse").joinpath("schema").iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def model_names() -> list[str]:
    """Every model: warehouse/models/<table>.sql."""
    folder = resources.files("warehouse").joinpath("models")
    return sorted(e.name[:-4] for e in folder.iterdir() if e.name.endswith(".sql"))
