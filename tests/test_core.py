"""The shared core: downloads, data root, checkpoints, RNG capture, the sweep table's seed aggregation."""
from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import torch

from trends.core.checkpoint import load_checkpoint, save_checkpoint
from trends.core.data import fetch, writable_copy_of
from trends.errors import UserError
from trends.core.seed import capture_rng, restore_rng
from trends.records.tables import aggregate_over_seeds, rich_table


def test_fetch_verifies_the_checksum_and_moves_into_place(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("hello world")
    good = hashlib.sha256(b"hello world").hexdigest()
    dest = tmp_path / "data" / "copy.txt"
    assert fetch(source.as_uri(), dest, good).read_text() == "hello world"
    with pytest.raises(UserError, match="damaged"):
        fetch(source.as_uri(), tmp_path / "data" / "bad.txt", "0" * 64)
    assert not (tmp_path / "data" / "bad.txt").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["copy.txt"]  # no partial files left behind


def test_fetch_offline_names_the_destination(tmp_path):
    dest = tmp_path / "x" / "input.txt"
    with pytest.raises(UserError, match=str(dest)):
        fetch("http://127.0.0.1:9/input.txt", dest, None, timeout=5)
    assert not dest.exists()


def test_read_only_root_redirects_writes_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "ro"
    root.mkdir()
    assert writable_copy_of(root, "Cora") == root / "Cora"
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert writable_copy_of(blocked, "Cora") == tmp_path / "cache" / "trends" / "data" / "Cora"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)  # like ../shared/data: read-only, even for root
    assert writable_copy_of(shared, "Cora") == tmp_path / "cache" / "trends" / "data" / "Cora"


def test_checkpoint_round_trip_restores_every_rng(tmp_path):
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    state = capture_rng()
    expected = (torch.rand(3), random.random(), np.random.rand())
    save_checkpoint(tmp_path / "c.pt", {"rng": state, "w": torch.ones(2)})
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]


def test_corrupt_checkpoint_is_a_user_error(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(tmp_path / "c.pt")


def test_seed_aggregation_reports_mean_and_std():
    rows = [{"job": str(i), "overrides": f"model={m} seed={s}", "status": "completed", "acc": acc}
            for i, (m, s, acc) in enumerate([("gcn", 0, 0.80), ("gcn", 1, 0.82), ("mlp", 0, 0.58), ("mlp", 1, 0.60)])]
    rows.append({"job": "4", "overrides": "model=gcn seed=2", "status": "failed"})
    table = {r["overrides"]: r for r in aggregate_over_seeds(rows)}
    assert table["model=gcn"]["seeds"] == 2 and table["model=mlp"]["seeds"] == 2
    assert table["model=gcn"]["acc"] == "0.81 ± 0.014"


def test_terminal_tables_show_overrides_literally():
    # Rich reads `[vit]` as a markup tag and drops it unless the text is escaped.
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(rich_table([{"job": "0", "overrides": "models=[vit] optim.lr.vit=0.001", "acc": 0.5}],
                             "sweep — all jobs: models=[resnet,vit]"))
    text = console.export_text()
    assert "models=[vit] optim.lr.vit=0.001" in text and "models=[resnet,vit]" in text
