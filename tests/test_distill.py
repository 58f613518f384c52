"""`trends distill`: the distillation loss against a hand computation, DistilBERT's initialisation, the teacher
refused when it is not a finished char-GPT run, the three students through the CLI with a smoke teacher (trained
first when none is given, then reused), Ctrl-C and an exact resume, and students of a Tiny Shakespeare teacher."""
from __future__ import annotations

import math
import shutil

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from helpers import reference_then_interrupted, shared, summary, trends
from trends.errors import UserError
from trends.distill.loss import distillation_loss
from trends.distill.student import chosen_blocks, init_from_teacher, student_shape
from trends.distill.teacher import Teacher
from trends.text.model import GPT, GPTConfig

STUDENTS = ("scratch", "soft_targets", "distilbert")


def test_distillation_loss_equals_a_hand_computation():
    student, teacher = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[2.0, 1.0, 0.0]])
    target, T, alpha = torch.tensor([1]), 2.0, 0.75

    def softmax(logits, t):
        e = [math.exp(v / t) for v in logits]
        return [v / sum(e) for v in e]

    p_teacher, p_student = softmax([2.0, 1.0, 0.0], T), softmax([1.0, 0.0, -1.0], T)
    kl = sum(p * math.log(p / q) for p, q in zip(p_teacher, p_student))
    cross_entropy = -math.log(softmax([1.0, 0.0, -1.0], 1.0)[1])
    expected = alpha * T ** 2 * kl + (1 - alpha) * cross_entropy
    assert distillation_loss(student, teacher, target, T, alpha).item() == pytest.approx(expected, rel=1e-6)
    # α = 0 is the data alone: the plain cross-entropy, whatever the teacher says.
    batch = torch.randn(2, 5, 7), torch.randn(2, 5, 7), torch.randint(7, (2, 5))
    assert distillation_loss(*batch, temperature=3.0, alpha=0.0).item() == pytest.approx(
        F.cross_entropy(batch[0].flatten(0, 1), batch[2].flatten()).item())
    # A student that already matches the teacher pays only the data's share.
    same = distillation_loss(batch[1], batch[1], batch[2], temperature=2.0, alpha=0.5)
    assert same.item() == pytest.approx(0.5 * F.cross_entropy(batch[1].flatten(0, 1), batch[2].flatten()).item(),
                                        rel=1e-5)


def _gpt(n_layer: int, n_embd: int = 32, n_head: int = 4) -> GPT:
    return GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=0.0,
                         bias=False))


def test_distilbert_initialisation_copies_exactly_the_chosen_teacher_blocks():
    torch.manual_seed(0)
    teacher, student = _gpt(4), _gpt(2)
    assert chosen_blocks(4, 2) == [0, 2] and chosen_blocks(6, 3) == [0, 2, 4] and chosen_blocks(4, 1) == [0]
    init_from_teacher(student, teacher, chosen_blocks(4, 2))
    t, s = teacher.state_dict(), student.state_dict()
    for name in ("tok_emb.weight", "pos_emb.weight", "ln_f.weight", "head.weight"):
        assert torch.equal(s[name], t[name]), name
    for mine, theirs in ((0, 0), (1, 2)):
        block = {k.split(".", 2)[2]: v for k, v in s.items() if k.startswith(f"blocks.{mine}.")}
        assert block and all(torch.equal(v, t[f"blocks.{theirs}.{k}"]) for k, v in block.items())
    assert not torch.equal(s["blocks.1.mlp.fc.weight"], t["blocks.1.mlp.fc.weight"])  # block 1 was skipped
    with pytest.raises(UserError, match="teacher_blocks"):
        chosen_blocks(4, 2, [0, 4])


def test_a_distilbert_student_must_keep_the_teachers_width():
    teacher = Teacher(run_dir=None, config=None, vocab=[], model=_gpt(4))
    student = OmegaConf.create({"n_layer": None, "n_head": None, "n_embd": 64, "dropout": 0.0})
    assert student_shape(student, teacher, "scratch")["n_embd"] == 64  # a narrower or wider scratch student is fine
    with pytest.raises(UserError, match="as wide"):
        student_shape(student, teacher, "distilbert")
    assert student_shape(OmegaConf.create({**student, "n_embd": None}), teacher, "distilbert")["n_layer"] == 2


@pytest.fixture(scope="module")
def smoke_distill(tmp_path_factory):
    """`trends distill --smoke` with no teacher (it trains `trends lm --smoke` first), then again (it reuses it)."""
    root = tmp_path_factory.mktemp("distill")
    first = trends("distill", "--smoke", cwd=root)
    second = trends("distill", "--smoke", "train.steps=40", "train.eval_every=20", cwd=root)
    return root, first, second


def test_smoke_without_a_teacher_trains_one_then_reuses_it(smoke_distill):
    root, first, second = smoke_distill
    assert first.returncode == 0, first.stderr
    assert "training one first" in first.stderr
    (teacher,) = (root / "outputs" / "lm").iterdir()
    assert summary(teacher)["status"] == "completed"
    assert second.returncode == 0, second.stderr
    assert "training one first" not in second.stderr and f"teacher: outputs/lm/{teacher.name}" in second.stderr
    assert len(list((root / "outputs" / "lm").iterdir())) == 1


def test_smoke_sweep_leaves_the_three_students_and_the_comparison(smoke_distill):
    root, first, _ = smoke_distill
    sweep = min((root / "outputs" / "distill" / "multirun").iterdir())
    teacher_params = None
    for n, method in enumerate(STUDENTS):
        job = summary(sweep / f"{n}_{method}")
        assert job["status"] == "completed" and job["method"] == method
        assert job["params"] < job["teacher_params"] and job["teacher_layers"] == 2
        assert job["metrics"]["teacher_val_loss"] == summary(sweep / "0_scratch")["metrics"]["teacher_val_loss"]
        teacher_params = job["teacher_params"]
    assert summary(sweep / "2_distilbert")["teacher_blocks"] == [0]
    result = summary(sweep)
    assert result["status"] == "completed" and result["headline"] == "val_loss/distilbert"
    for key in ("val_loss/teacher", "val_loss/scratch", "val_loss/soft_targets", "val_loss/distilbert",
                "gap_closed/distilbert", "generation_speedup", "generation_speedup_uncached"):
        assert isinstance(result[key], (int, float)), key
    assert result["params/teacher"] == teacher_params and result["params_percent"] < 100
    (teacher,) = (root / "outputs" / "lm").iterdir()
    for cache in ("", "_uncached"):  # the speed-ups are the ratios of the rates, and every rate is one a machine has
        rates = {who: result[f"chars_per_s{cache}/{who}"] for who in ("teacher", "student")}
        assert result[f"generation_speedup{cache}"] == pytest.approx(rates["student"] / rates["teacher"], rel=0.01)
        assert physical_decoding_rate(rates["teacher"], summary(teacher)), rates
        assert physical_decoding_rate(rates["student"], summary(sweep / "0_scratch")), rates
    assert decoding_speedup(sweep / "0_scratch", teacher) > 1  # 1 of the teacher's 2 layers: measured 1.2-2.5
    assert [r["model"] for r in result["students"]] == ["teacher", *STUDENTS]
    for name in ("distill.md", "distill.csv", "sweep.md", "plots/val_curves.png", "plots/size_loss_speed.png"):
        assert (sweep / name).is_file(), name
    assert "generates" in first.stdout


def test_a_teacher_that_is_not_a_finished_char_gpt_run_is_refused(smoke_distill, workdir, cli):
    root, *_ = smoke_distill
    (teacher,) = (root / "outputs" / "lm").iterdir()
    student = next((root / "outputs" / "distill" / "multirun").iterdir()) / "0_scratch"
    unfinished = shutil.copytree(teacher, workdir / "unfinished")
    (unfinished / "summary.json").write_text((teacher / "summary.json").read_text()
                                             .replace('"completed"', '"interrupted"'))
    for path, message in ((workdir / "nowhere", "not a run folder"), (student, "`trends distill` run"),
                          (unfinished, "has not finished")):
        code, output = cli("distill", "--smoke", f"teacher={path}")
        assert code == 2, (path, output)
        assert message in output and len(output.strip().splitlines()) <= 2, output
    assert not (workdir / "outputs").exists()  # refused before any folder was made


def test_ctrl_c_then_resume_finishes_the_students_exactly(smoke_distill, tmp_path):
    root, *_ = smoke_distill
    (teacher,) = (root / "outputs" / "lm").iterdir()
    longer = ["--smoke", f"teacher={teacher}", "train.steps=80", "train.eval_every=10", "distill.speed_chars=20"]
    reference, _ = reference_then_interrupted(tmp_path, "distill", longer, sweep=True)
    (sweep,) = (tmp_path / "outputs" / "distill" / "multirun").iterdir()
    assert summary(sweep / "0_scratch")["status"] == "interrupted" and not (sweep / "2_distilbert").exists()
    resumed = trends("distill", "--resume", str(sweep), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for n, method in enumerate(STUDENTS):
        got, expected = summary(sweep / f"{n}_{method}")["metrics"], summary(reference / f"{n}_{method}")["metrics"]
        for key in ("best_val_loss", "final_val_loss", "final_train_loss", "teacher_val_loss"):
            assert got[key] == expected[key], (method, key)
    assert summary(sweep)["val_loss/distilbert"] == summary(reference)["val_loss/distilbert"]


def test_students_of_a_tiny_shakespeare_teacher(tmp_path):
    """A short teacher on the real text; its DistilBERT student, at the same budget and seed, beats the scratch one."""
    text = shared("tinyshakespeare", "input.txt")
    teacher = trends("lm", "data=text", f"data.path={text}", "train.steps=250", "train.epochs=null",
                     "train.eval_every=250", "train.eval_batches=10", "model.n_embd=64", cwd=tmp_path)
    assert teacher.returncode == 0, teacher.stderr
    (teacher_dir,) = (tmp_path / "outputs" / "lm").iterdir()
    result = trends("distill", f"teacher={teacher_dir}", "seed=0", "distill.method=scratch,distilbert",
                    "train.steps=80", "train.eval_every=80", "train.eval_batches=10", "distill.speed_chars=100",
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (sweep,) = (tmp_path / "outputs" / "distill" / "multirun").iterdir()
    found = summary(sweep)
    assert found["val_loss/distilbert"] < found["val_loss/scratch"] - 0.1
    assert found["val_loss/teacher"] < found["val_loss/scratch"]
    assert found["params_percent"] < 60
    assert decoding_speedup(sweep / "0_scratch", teacher_dir) > 1.25  # 2 of the teacher's 4 layers: measured 1.6-2.4


def physical_decoding_rate(chars_per_s: float, run: dict) -> bool:
    """Whether a run's model can decode at `chars_per_s` on this machine: one character (a forward pass over one
    position) takes less than one of its training steps (forward and backward over tokens_per_step positions), and
    a forward pass (a third of the training FLOPs per token) cannot beat the machine's peak. Wide bounds (25-45× and
    thousands of times away for the smoke models): a loaded machine stays inside, a rate of the wrong unit or of the
    wrong thing does not."""
    steps_per_s = run["metrics"]["tokens_per_s"] / run["tokens_per_step"]
    return steps_per_s < chars_per_s < 3 * run["peak_flops"] / run["flops_per_token"]


def decoding_speedup(student_run, teacher_run, chars: int = 100, rounds: int = 5) -> float:
    """The student's decoding speed over the teacher's, both loaded from their run folders and timed in turns, on one
    thread, the best of `rounds` each: the machine's other work only slows a timing down, and turns give both models
    its quiet moments. (One timing of each, as the sweep's table takes, swings either way under load: on a 2-core
    machine running other tests, 0.14× to 3.1× for the smoke pair on two threads; this ratio stayed within 1.2-2.5×
    with two busy loops beside it.)"""
    from trends.text.sample import generation_speed, load_gpt_run

    models = [load_gpt_run(run)[0] for run in (student_run, teacher_run)]
    threads, best = torch.get_num_threads(), [0.0, 0.0]
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for _ in range(rounds):
                for i, model in enumerate(models):
                    best[i] = max(best[i], generation_speed(model, chars, repeats=1))
    finally:
        torch.set_num_threads(threads)
    return best[0] / best[1]
