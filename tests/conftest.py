"""Fixtures: a fresh folder per test (outputs and caches inside it) and the CLI in-process. The tools the tests
share are in helpers.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config) -> None:
    """The read-only dataset copies: $TRENDS_SHARED_DATA, else ../shared/data beside the checkout. Set for the whole
    session, so helpers.shared() and every subprocess see the same folder."""
    if not os.environ.get("TRENDS_SHARED_DATA"):
        os.environ["TRENDS_SHARED_DATA"] = str((REPO.parent / "shared" / "data").resolve())


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run inside a fresh folder: outputs/ lands there, caches too (XDG_CACHE_HOME), so tests never share state."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TRENDS_OUTPUTS", raising=False)
    monkeypatch.delenv("TRENDS_DATA", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return tmp_path


@pytest.fixture
def cli():
    """`trends ARGS` in-process through Typer's runner, `env` set for it: (exit_code, output)."""
    from trends.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        result = runner.invoke(app, list(args), catch_exceptions=False, env=env)
        return result.exit_code, result.output

    return invoke
