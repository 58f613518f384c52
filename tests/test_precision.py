"""train.amp (auto | true | false): the precision a device gets and why, its record in a run's summary, the fp32
path with no warnings where a CPU lacks bf16 (forced with TRENDS_CPU_BF16=0), attention kept in fp32 on CPUs, and
the MFU peak of the dtype used."""
from __future__ import annotations

import contextlib
import json
import platform
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from helpers import run_dirs, summary, trends
from trends.core.attention import attention
from trends.core.config import check_values
from trends.errors import UserError
from trends.core.precision import choose_precision, cpu_bf16_matmul

CPU = torch.device("cpu")


@pytest.fixture
def fresh_detection():
    cpu_bf16_matmul.cache_clear()  # asked once per process: let each test ask again
    yield
    cpu_bf16_matmul.cache_clear()


def test_auto_follows_the_cpu_and_forced_values_win(monkeypatch, fresh_detection):
    monkeypatch.setenv("TRENDS_CPU_BF16", "0")
    fp32 = choose_precision(CPU, "auto")
    assert (fp32.name, fp32.dtype, fp32.why) == ("fp32", torch.float32, "auto: TRENDS_CPU_BF16=0")
    assert isinstance(fp32.autocast(), contextlib.nullcontext)

    cpu_bf16_matmul.cache_clear()
    monkeypatch.setenv("TRENDS_CPU_BF16", "1")
    bf16 = choose_precision(CPU, "auto")
    assert (bf16.name, bf16.dtype) == ("bf16", torch.bfloat16)
    with bf16.autocast():
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16

    assert choose_precision(CPU, False).name == "fp32" and choose_precision(CPU, True).name == "bf16"
    assert choose_precision(torch.device("cuda"), "auto").bf16  # every GPU these presets target has bf16
    for bad in ("bf16", None, 0.5, 1):  # refused by the launch's check, before the run: 1 is not true
        with pytest.raises(UserError, match="auto, true or false"):
            check_values(OmegaConf.create({"train": {"amp": bad}}))


def test_detection_agrees_with_the_cpu_flags(monkeypatch, fresh_detection):
    monkeypatch.delenv("TRENDS_CPU_BF16", raising=False)
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() != "x86_64" or not cpuinfo.exists():
        pytest.skip("the flags are read from /proc/cpuinfo on x86-64 Linux")
    flags = set(cpuinfo.read_text().split())
    native, why = cpu_bf16_matmul()
    assert native == bool({"avx512_bf16", "amx_bf16"} & flags), why


def test_attention_on_a_cpu_runs_in_fp32_inside_bf16_autocast():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 16, 8, requires_grad=True) for _ in range(3))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), is_causal=True)
    assert out.dtype == torch.bfloat16  # what the next bf16 matmul expects
    assert (out.float() - reference).abs().max() < 0.03  # only the inputs' and output's rounding
    out.float().sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_fp32_without_bf16_quietly_and_each_precision_recorded_with_its_peak(workdir, cli):
    no_bf16 = trends("lm", "--smoke", cwd=workdir, env={"TRENDS_CPU_BF16": "0"})
    assert no_bf16.returncode == 0, no_bf16.stderr
    assert "warn" not in no_bf16.stderr.lower()  # no warning storm on the fp32 path
    code, out = cli("lm", "--smoke", "train.amp=true")
    assert code == 0, out
    peaks = json.loads((workdir / "cache" / "trends" / "peak_flops.json").read_text())
    runs = [summary(run) for run in run_dirs(workdir, "lm")]
    assert [(r["precision"], r["precision_why"]) for r in runs] == [("fp32", "auto: TRENDS_CPU_BF16=0"),
                                                                     ("bf16", "train.amp=true")]
    for recorded, dtype in zip(runs, ("float32", "bfloat16")):  # MFU divides by the peak of the dtype used
        (peak,) = [value for key, value in peaks.items() if f"|{dtype}|" in key]
        assert recorded["peak_flops"] == peak


def test_gnn_takes_auto_though_its_default_is_fp32(workdir, cli):
    code, out = cli("gnn", "--smoke", "train.amp=auto")
    assert code == 0, out
    (run,) = run_dirs(workdir, "gnn")
    assert summary(run)["precision"] == choose_precision(CPU, "auto").name
