"""Bad input, answered: the commands that read folders (`report`, `sample`, `runs show`, `runs compare`, a sweep
demo's `--from`) refuse what is not what they read — a missing path, a file, an empty folder, a damaged record, a run
or sweep of another demo, a checkpoint of another kind — in at most two lines on stderr, exit code 2, no traceback,
nothing written; `distill --from` analyses a distill sweep again; charts skip values that are not finite; text from
the data (a sample, a folder's name, an override, a metric's name) is escaped on every page and in the terminal."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from helpers import CHROMIUM, summary
from PIL import Image
from typer.testing import CliRunner

from trends.records.charts import bar_chart, line_chart
from trends.records.plots import line_plot

CHECKPOINT = Path("checkpoints") / "last.pt"


def invoke(*args):
    """`trends ARGS` in-process (stderr apart from stdout); an uncaught exception fails the test with its traceback."""
    from trends.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def only(folder: Path) -> Path:
    (child,) = [p for p in folder.iterdir() if p.is_dir()]
    return child


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Tiny real runs, made once: an lm run (distill's teacher, trained first), a distill sweep, a gnn run."""
    root = tmp_path_factory.mktemp("made")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("XDG_CACHE_HOME", str(root / "cache"))
        for name in ("TRENDS_OUTPUTS", "TRENDS_DATA", "HYDRA_FULL_ERROR"):
            patch.delenv(name, raising=False)
        for args in (["distill", "--smoke", "distill.speed_chars=20"], ["gnn", "--smoke"]):
            result = invoke(*args)
            assert result.exit_code == 0, result.output
    outputs = root / "outputs"
    return {"lm run": only(outputs / "lm"), "distill sweep": only(outputs / "distill" / "multirun"),
            "gnn run": only(outputs / "gnn")}


@pytest.fixture(scope="module")
def bad(made, tmp_path_factory) -> dict[str, Path]:
    """What the commands must refuse, each made from a copy of a real folder where it can be."""
    root = tmp_path_factory.mktemp("bad")
    lm = made["lm run"]

    def copy(name: str) -> Path:
        return shutil.copytree(lm, root / name)

    (root / "empty").mkdir()
    (root / "notes.txt").write_text("not a run\n")
    torn = copy("torn_summary")
    text = (torn / "summary.json").read_text()
    (torn / "summary.json").write_text(text[: len(text) // 2])  # as a full disk left it before atomic writes
    (copy("listed_summary") / "summary.json").write_text("[]\n")
    (copy("damaged_config") / ".hydra" / "config.yaml").write_text("model: {n_layer: 2\n")
    shutil.copy(made["gnn run"] / CHECKPOINT, copy("gnn_checkpoint") / CHECKPOINT)
    no_parts = copy("no_parts")
    state = torch.load(no_parts / CHECKPOINT, weights_only=True)
    del state["parts"]
    torch.save(state, no_parts / CHECKPOINT)
    torn_checkpoint = copy("torn_checkpoint") / CHECKPOINT
    torn_checkpoint.write_bytes(torn_checkpoint.read_bytes()[:1000])
    gnn_sweep = root / "gnn_sweep"  # a sweep of another demo: its job folders hold gnn runs
    shutil.copytree(made["gnn run"], gnn_sweep / "0")
    shutil.copytree(lm, root / "one_size_sweep" / "0")  # an lm sweep of one size: no law to fit
    return {"one size sweep": root / "one_size_sweep", "missing": root / "nowhere", "file": root / "notes.txt", "empty": root / "empty",
            "torn summary": torn, "summary not an object": root / "listed_summary",
            "damaged config": root / "damaged_config", "gnn checkpoint": root / "gnn_checkpoint",
            "no parts": no_parts, "torn checkpoint": root / "torn_checkpoint", "gnn sweep": gnn_sweep, **made}


NOT_A_RECORD = (("missing", "does not exist"), ("file", "is a file"), ("empty", "not a run or sweep folder"),
                ("torn summary", "summary.json cannot be read"), ("summary not an object", "no JSON object"))
REFUSED = [  # (command, what it is given, what its one line says)
    *[("report", given, says) for given, says in NOT_A_RECORD],
    *[("runs show", given, says) for given, says in NOT_A_RECORD],
    *[("runs compare", given, says) for given, says in (
        *NOT_A_RECORD, ("damaged config", "config.yaml is damaged"), ("distill sweep", "is a sweep"))],
    *[("sample", given, says) for given, says in (
        ("missing", "does not exist"), ("file", "is a file"), ("empty", "not a run folder"),
        ("gnn run", "`trends gnn` run"), ("gnn checkpoint", "holds no char-GPT"), ("no parts", "no model weights"),
        ("torn checkpoint", "corrupt or unreadable"), ("distill sweep", "is a sweep"))],
    *[("distill --from", given, says) for given, says in (
        ("missing", "does not exist"), ("file", "is a file"), ("empty", "not a sweep folder"),
        ("lm run", "not a sweep folder"), ("gnn sweep", "is a `trends gnn` sweep"))],
    *[("scaling --from", given, says) for given, says in (
        ("missing", "does not exist"), ("file", "is a file"), ("empty", "not a sweep folder"),
        ("lm run", "not a sweep folder"), ("gnn sweep", "is a `trends gnn` sweep"),
        ("distill sweep", "is a `trends distill` sweep"), ("one size sweep", "3 or more sizes"))],
    *[("recipe --from", given, says) for given, says in (
        ("missing", "does not exist"), ("empty", "not a sweep folder"), ("lm run", "not a sweep folder"),
        ("distill sweep", "is a `trends distill` sweep"))],
    ("gnn --from", "distill sweep",
     "--from is an option of `trends scaling`, `trends recipe` and `trends distill`"),
]


def files(*roots: Path) -> set:
    """Every path under the roots, with each file's size and modification time: what a command wrote shows."""
    return {(p, p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (p,)
            for root in roots for p in root.rglob("*")}


@pytest.mark.parametrize(("command", "given", "says"), REFUSED, ids=[f"{c} {g}" for c, g, _ in REFUSED])
def test_a_command_refuses_what_it_cannot_read_in_one_line(command, given, says, bad, workdir):
    args = [*command.split(), bad[given]]
    if command == "runs compare":
        args.append(bad["lm run"])
    before = files(workdir, *{p.parent for p in bad.values()})
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and says in result.stderr and "Traceback" not in result.output, result.stderr
    assert files(workdir, *{p.parent for p in bad.values()}) == before  # nothing written, nothing made


def test_distill_from_analyses_a_distill_sweep_again(made, workdir):
    sweep = shutil.copytree(made["distill sweep"], workdir / "sweep")
    (sweep / "summary.json").unlink()
    result = invoke("distill", "--from", sweep, "distill.speed_chars=20")
    assert result.exit_code == 0, result.output
    assert summary(sweep)["headline"] == "val_loss/distilbert" and (sweep / "distill.md").is_file()


NOT_FINITE = (math.nan, math.inf, -math.inf)


def drawn_from_nothing(svg: str) -> bool:
    """Whether an SVG has an attribute (a coordinate, a height) computed from a value that is not finite."""
    return re.search(r'="[^"]*\b(nan|inf)', svg, flags=re.IGNORECASE) is not None


@pytest.mark.parametrize("value", NOT_FINITE, ids=["nan", "inf", "-inf"])
def test_charts_skip_values_that_are_not_finite(value, tmp_path):
    line = line_chart({"a": ([0, 1, 2, 3], [2.0, value, 1.5, 1.2]), "b": ([0, value, 2], [1.0, 1.1, 0.9])},
                      title="loss", spread={"a": [0.1, 0.1, value, 0.1]})
    assert line.count("<polyline") == 2 and line.count("<circle") == 2 + 2 and not drawn_from_nothing(line)
    bars = bar_chart(["x", "y", "z"], [1.0, value, 2.0], [0.1, 0.1, value], title="acc")
    assert bars.count("<rect") == 2 and bars.count("<path") == 1 and ">y<" in bars and not drawn_from_nothing(bars)
    assert line_chart({"a": ([0, 1], [value, value])}, title="t") == "" and bar_chart(["x"], [value], title="t") == ""
    png = line_plot(tmp_path / "plot.png", {"a": ([1, 2, 3], [value] * 3), "b": ([1, 2, 3], [1.0, value, 0.5])},
                    xlabel="step", ylabel="loss", title="t", logx=True, hlines={"reference": value})
    with Image.open(png) as image:
        assert image.size[0] > 100


def rewrite_summary(folder: Path, change) -> None:
    record = summary(folder)
    change(record)
    (folder / "summary.json").write_text(json.dumps(record))  # json writes NaN and Infinity, as a run's record can


def test_a_report_skips_the_values_a_diverged_run_logged(made, workdir):
    run = shutil.copytree(made["lm run"], workdir / "diverged")
    with (run / "metrics.jsonl").open("a") as f:
        for step, loss in ((10_000, math.nan), (10_001, math.inf)):
            f.write(json.dumps({"step": step, "split": "val", "loss": loss}) + "\n")
    rewrite_summary(run, lambda s: s["metrics"].update(best_val_loss=math.nan))
    sweep = shutil.copytree(made["distill sweep"], workdir / "sweep")
    rewrite_summary(sweep / "0_scratch", lambda s: s["metrics"].update(best_val_loss=math.inf))
    for folder in (run, sweep):
        result = invoke("report", folder)
        assert result.exit_code == 0, result.output
        svgs = re.findall(r"<svg.*?</svg>", (folder / "report.html").read_text(), flags=re.S)
        assert svgs and not any(drawn_from_nothing(svg) for svg in svgs)


SCRIPT = "<script>document.title=666</script>"  # what runs where a page lets text from the data through


class Elements(HTMLParser):
    """The tags and the text of a page, as a parser reads them."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def assert_escaped(page: str, texts: list[str]) -> None:
    """No element came from the data (no script, no event handler), and each text is on the page, as text."""
    seen = Elements(page)
    assert not [tag for tag, attrs in seen.tags if tag == "script" or any(a.startswith("on") for a in attrs)]
    shown = re.sub(r"\s+", " ", "".join(seen.text))
    for text in texts:
        assert text in shown, text


def in_a_browser(page: Path) -> str:
    """The page's DOM as headless Chromium leaves it once loaded (scripts run): what a reader gets."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout


def test_text_from_the_data_is_escaped_on_every_page_and_in_the_terminal(made, workdir):
    name = "[/red]<script>document.title=666"  # a folder's name: no slash, so no closing tag; rich markup too
    run = shutil.copytree(made["lm run"], workdir / name)
    (run / "samples.txt").write_text(f"ROMEO: {SCRIPT}\n")
    override = f"data.path={SCRIPT}"
    rewrite_summary(run, lambda s: s["overrides"].append(override))
    with (run / "metrics.jsonl").open("a") as f:  # a metric's name: a chart's title
        f.writelines(json.dumps({"step": step, "split": "val", SCRIPT: 1.0 / step}) + "\n" for step in (1, 2))
    sweep = shutil.copytree(made["distill sweep"], workdir / "sweep")
    rewrite_summary(sweep / "0_scratch", lambda s: s["overrides"].append(override))  # a variant's label
    assert invoke("report", run).exit_code == 0
    assert invoke("report", sweep).exit_code == 0
    assert invoke("report", run, made["lm run"], "-o", workdir / "compare.html").exit_code == 0
    pages = {run / "report.html": [name, f"ROMEO: {SCRIPT}", override, SCRIPT],
             sweep / "report.html": [override], workdir / "compare.html": [name]}
    for page, texts in pages.items():
        assert_escaped(page.read_text(), texts)
        if CHROMIUM:
            dom = in_a_browser(page)
            assert_escaped(dom, [])
            assert "<title>666</title>" not in dom
    for args in (["runs", "show", run], ["runs", "compare", run, made["lm run"]]):
        result = invoke(*args)
        assert result.exit_code == 0 and "[/red]" in result.stdout, result.output
