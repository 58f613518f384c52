"""`trends lm`: the run folder, learning on real text, Ctrl-C + exact resume, the NaN guard, sampling."""
from __future__ import annotations

import json
import math

import pytest
import torch

from helpers import TRENDS, ctrl_c_after_first_checkpoint, run_dirs, shared, summary, trends
from trends.text.model import GPT, GPTConfig, KVCache



def test_smoke_in_process_leaves_a_complete_run_folder(workdir, cli):
    code, out = cli("lm", "--smoke")
    assert code == 0, out
    (run,) = run_dirs(workdir, "lm")
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "lm.log", "metrics.jsonl", "summary.json",
                 "checkpoints/last.pt", "plots/loss.png", "samples.txt"):
        assert (run / name).is_file(), name
    recorded = summary(run)
    assert recorded["status"] == "completed"
    for key in ("duration_s", "params", "device", "seed", "versions", "metrics", "tokens_per_step", "precision"):
        assert key in recorded
    assert recorded["metrics"]["tokens_per_s"] > 0 and 0 < recorded["metrics"]["mfu"] < 1
    splits = {json.loads(line)["split"] for line in (run / "metrics.jsonl").read_text().splitlines()}
    assert splits == {"step", "train", "val"}


def test_short_run_on_tiny_shakespeare_learns(workdir):
    text = shared("tinyshakespeare", "input.txt")
    result = trends("lm", "data=text", f"data.path={text}", "train.steps=150", "train.batch_size=16",
                    "train.eval_every=150", "train.eval_batches=4", "train.epochs=null", "model.n_layer=2",
                    "model.n_embd=64", "model.n_head=4", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(workdir, "lm")
    recorded = summary(run)
    assert recorded["vocab_size"] == 65
    assert recorded["metrics"]["best_val_loss"] < math.log(65) - 1.3  # uniform guess: ln 65 ≈ 4.17


def test_shakespeare_from_the_data_root_reads_a_read_only_copy(workdir):
    root = shared()
    result = trends("lm", f"data.root={root}", "--cfg", cwd=workdir)  # composes; the real read is above
    assert result.returncode == 0
    from omegaconf import OmegaConf

    from trends.text.data import text_path

    cfg = OmegaConf.create({"name": "shakespeare", "path": None, "root": str(root), "url": "http://127.0.0.1:9/x",
                            "sha256": None})
    assert text_path(cfg).stat().st_size == 1115394  # found in the root, no download attempted


SMOKE_LONG = ["--smoke", "train.steps=300", "train.eval_every=50", "train.log_every=50"]


def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(workdir):
    straight = trends("lm", *SMOKE_LONG, cwd=workdir, env={"TRENDS_OUTPUTS": "straight"})
    assert straight.returncode == 0, straight.stderr
    (reference,) = (workdir / "straight" / "lm").iterdir()

    code, err = ctrl_c_after_first_checkpoint([*TRENDS, "lm", *SMOKE_LONG], "lm", workdir)
    assert code == 130, err
    (run,) = (workdir / "outputs" / "lm").iterdir()
    assert summary(run)["status"] == "interrupted"
    assert "--resume" in err

    resumed = trends("lm", "--resume", str(run), cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    final, expected = summary(run), summary(reference)
    assert final["status"] == "completed" and final["resumed"] == 1
    for key in ("best_val_loss", "final_val_loss", "final_train_loss"):
        assert final["metrics"][key] == expected["metrics"][key], key
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "val"]
    assert steps == sorted(set(steps))  # no duplicated points after the resume


def test_nan_loss_stops_the_run_as_diverged(workdir):
    result = trends("lm", "--smoke", "optim.lr=inf", "optim.warmup_steps=1", cwd=workdir)
    assert result.returncode == 1
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    (run,) = run_dirs(workdir, "lm")
    recorded = summary(run)
    assert recorded["status"] == "diverged" and recorded["diverged_at_step"] == 2


def test_sample_continues_the_prompt(workdir, cli):
    assert trends("lm", "--smoke", cwd=workdir).returncode == 0
    (run,) = run_dirs(workdir, "lm")
    code, out = cli("sample", str(run), "--prompt", "Shall I", "--tokens", "40", "--temperature", "0.8")
    assert code == 0
    assert out.startswith("Shall I") and len(out.rstrip("\n")) >= 40
    code, out = cli("sample", str(run), "--prompt", "§", "--tokens", "5")
    assert code == 2 and "not in the training text" in out


def test_model_shapes_tied_embeddings_and_causality():
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=False)
    model = GPT(cfg).eval()
    assert model.head.weight is model.tok_emb.weight
    idx = torch.randint(0, 11, (2, 8))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, 8, 11) and loss.ndim == 0
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 11
    # the future never leaks into the past: only the last position may change
    assert torch.allclose(model(changed)[0][:, :-1], logits[:, :-1], atol=1e-6)
    decayed = {id(p) for p in model.param_groups(0.1)[0]["params"]}
    assert id(model.tok_emb.weight) not in decayed and id(model.blocks[0].ln1.weight) not in decayed
    assert id(model.blocks[0].attn.qkv.weight) in decayed


def test_kv_cache_decodes_exactly_the_characters_of_the_uncached_path():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=False)
    model = GPT(cfg).eval()
    for prompt_length in (1, 5, 8, 13):  # shorter than the block, a full block, longer: the window jumps many times
        prompt = torch.randint(0, 11, (2, prompt_length))
        runs = [model.generate(prompt, 40, temperature=0.9, top_k=6, generator=torch.Generator().manual_seed(3),
                               cache=cache) for cache in (True, False)]
        assert runs[0].shape == (2, prompt_length + 40)
        assert torch.equal(runs[0], runs[1]), prompt_length
    # The cached logits of one more token are those of the whole context.
    context = torch.randint(0, 11, (1, 6))
    kv = KVCache(cfg.n_layer)
    model(context[:, :-1], cache=kv)
    stepped, _ = model(context[:, -1:], cache=kv)
    assert kv.length == 6
    assert torch.allclose(stepped[:, -1], model(context)[0][:, -1], atol=1e-5)
    with pytest.raises(ValueError):
        model(context[:, :2], cache=kv)  # a filled cache takes one token at a time
