"""What the tests share: the real data in ../shared/data, the `trends` command in a subprocess, run folders, and
Ctrl-C at the right moment. Imported as `from helpers import ...` (pytest puts tests/ on sys.path)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TRENDS = [sys.executable, "-m", "trends"]


def shared_data() -> Path:
    """The read-only dataset copies: $TRENDS_SHARED_DATA (conftest.py sets it to ../shared/data beside the checkout
    when it is not set)."""
    return Path(os.environ["TRENDS_SHARED_DATA"])


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test where this machine has no copy."""
    path = shared_data().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    return path


def cifar_sample(target: Path, train_per_class: int, test_per_class: int) -> Path:
    """An ImageFolder of the first images of each class of the shared CIFAR-10 copy, as links under `target`
    (`target/train/<class>/`, `target/test/<class>/`); skips where this machine has no copy."""
    source = shared("cifar10_jpg")
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        for class_dir in sorted((source / split).iterdir()):
            (target / split / class_dir.name).mkdir(parents=True)
            for f in sorted(class_dir.iterdir())[:per_class]:
                (target / split / class_dir.name / f.name).symlink_to(f)
    return target


def trends(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`trends ARGS` in a subprocess (the real entry point, signals and exit codes included)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*TRENDS, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def run_dirs(root: Path, command: str) -> list[Path]:
    """Run folders (those with a summary.json) under <root>/outputs/<command>."""
    return sorted(p.parent for p in (root / "outputs" / command).glob("**/summary.json"))


def as_in_a_terminal() -> None:
    """Popen's preexec_fn for a command a test will Ctrl-C: SIGINT back to its default, as in a terminal's foreground.
    A shell that starts the suite in the background (`make test &`) makes it ignored, every child inherits that, and
    Python then leaves it ignored outside a run's own handler: a Ctrl-C between two jobs of a sweep would be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c_after_first_checkpoint(argv: list[str], command: str, cwd: Path, env: dict | None = None,
                                  whole_group: bool = False) -> tuple[int, str]:
    """Start `argv`, press Ctrl-C as soon as the run of `command` has saved its first checkpoint; (exit code,
    stderr). whole_group sends it to the process group, as a terminal does (torchrun and all its workers). A command
    that ends before that, or saves nothing within 120 s, fails the test: Ctrl-C is never sent late or to no one."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=whole_group,
                            preexec_fn=as_in_a_terminal)
    first_checkpoint(proc, cwd, command)
    if whole_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def first_checkpoint(proc: subprocess.Popen, cwd: Path, command: str, seconds: float = 120) -> Path:
    """The first checkpoint the run of `command` (started as `proc`) saves under cwd/outputs, once it exists and
    while `proc` still runs: a command that ends before, or saves nothing within `seconds`, fails the test (a
    signal is never sent late or to no one)."""
    deadline = time.time() + seconds
    while not (found := [c for c in sorted(cwd.glob(f"outputs/{command}/*/checkpoints/last.pt")) if _recorded(c)]):
        if proc.poll() is not None or time.time() > deadline:  # it ended, or hangs: a failure
            ended = f"ended (exit {proc.returncode})" if proc.returncode is not None else f"ran {seconds:.0f} s"
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"{command} {ended} without a checkpoint, so no signal was sent; stderr:\n{err[-2000:]}")
        time.sleep(0.02)
    if proc.poll() is not None:
        _, err = proc.communicate()
        pytest.fail(f"{command} ended (exit {proc.returncode}) before a signal could reach it: the run is too short "
                    f"for this test; stderr:\n{err[-2000:]}")
    return found[0]


def _recorded(checkpoint: Path) -> bool:
    """Is the checkpoint saved as far as its run is concerned: its summary.json records it (Loop.checkpoint writes
    the file first, then the summary: a signal in between would find a checkpoint the summary does not know)?"""
    try:
        return "checkpoint" in json.loads((checkpoint.parent.parent / "summary.json").read_text())
    except (OSError, ValueError):
        return False


def reference_then_interrupted(cwd: Path, command: str, args: list[str], cli=None,
                               sweep: bool = False) -> tuple[Path, str]:
    """The reference an interrupted run must match: `trends COMMAND ARGS` to the end into cwd/straight (in-process
    through the `cli` fixture where given: no start-up cost), then the same command in a subprocess stopped by Ctrl-C
    after its first checkpoint (exit code 130); `sweep`: the command is a sweep (its jobs checkpoint). Returns the
    reference's run (or sweep) folder and the interrupted run's stderr."""
    runs = f"{command}/multirun/*" if sweep else command  # the folder whose children checkpoint
    if cli is not None:
        code, output = cli(command, *args, env={"TRENDS_OUTPUTS": "straight"})
    else:
        result = trends(command, *args, cwd=cwd, env={"TRENDS_OUTPUTS": "straight"})
        code, output = result.returncode, result.stderr
    assert code == 0, output
    pattern = f"{'multirun/' if sweep else ''}*/summary.json"
    (reference,) = [p.parent for p in (cwd / "straight" / command).glob(pattern)]
    code, err = ctrl_c_after_first_checkpoint([*TRENDS, command, *args], runs, cwd)
    assert code == 130, err
    return reference, err


def summary(run: Path) -> dict:
    """A run folder's summary.json."""
    return json.loads((run / "summary.json").read_text())


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PROBE = """<script>window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length;
  document.title = "IMAGES " + document.images.length + " BROKEN " + broken; });</script>"""


@dataclass
class Seen:
    images: int  # <img> elements on the page
    broken_images: int  # of them, those the browser could not decode
    console: list[str]  # console messages (errors, warnings) the page produced
    colours: int  # distinct colours in a 1200 × 1600 screenshot: a blank page has one


def in_chromium(page: Path, scratch: Path) -> Seen:
    """Load an HTML file from disk in headless Chromium, as a reader would: a copy with a probe that counts the
    images the browser could not decode, the console's messages, and a screenshot of the page as shipped."""
    from PIL import Image

    probe = scratch / f"probe_{page.name}"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--dump-dom", "--virtual-time-budget=5000", f"file://{probe}")
    counts = re.search(r"<title>IMAGES (\d+) BROKEN (\d+)</title>", dom.stdout)
    assert counts, dom.stdout[:500]
    shot = scratch / f"{page.stem}.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", f"file://{page}")
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    return Seen(int(counts.group(1)), int(counts.group(2)),
                [line for line in dom.stderr.splitlines() if ":CONSOLE" in line], len(colours or []))


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=120)
