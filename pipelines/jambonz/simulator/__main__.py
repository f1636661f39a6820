"""`python -m pipelines.jambonz.simulator`: runs the command line of `cli.py`; nothing else."""

from __future__ import annotations

from pipelines.jambonz.simulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
