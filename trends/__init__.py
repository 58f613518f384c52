"""trends: one command per deep-learning trend, each a small self-contained demo on top of a shared core.

From Python: `from trends import run; r = run("gnn", "model=gat")` (see trends/api.py)."""


def run(command: str, *overrides: str, smoke: bool = False, multirun: bool = False):
    """Train `trends <command> <overrides>` in this process and return its record (trends.api.Record)."""
    from trends.api import run as _run

    return _run(command, *overrides, smoke=smoke, multirun=multirun)
