"""Each demo's finding — the sentence its report.html opens with — from example metrics: the headline, the baseline
the run has and the difference, in one sentence; and the records' own sentence for a sweep without one."""
from __future__ import annotations

import pytest

from trends.records.findings import as_sentence, spread, sweep_finding


def test_a_gpt_run_is_measured_against_the_uniform_guess_it_starts_from():
    from trends.text.findings import gpt_finding

    summary = {"params": 10_750_000, "vocab_size": 65, "metrics": {"best_val_loss": 1.769}}
    assert gpt_finding(summary) == (
        "the 10.8M-parameter GPT reaches a best validation loss of 1.769 nats/char (2.55 bits) — 2.41 below a "
        "uniform guess over its 65 characters (ln 65 = 4.174, where an untrained model starts)")
    assert gpt_finding({"vocab_size": 65, "metrics": {}}) is None  # stopped before its end: no sentence


def test_a_gnn_run_is_measured_against_chance():
    from trends.gnn.findings import graph_finding, node_finding

    assert node_finding({"classes": 7, "metrics": {"test_acc": 82.2}}, "gcn", "Cora") == (
        "GCN on Cora reaches 82.2 % test accuracy (at the epoch picked by validation) — 67.9 points above a "
        "uniform guess over its 7 classes (14.3 %)")
    assert graph_finding({"classes": 2, "fold_acc": [85.0, 90.0, 80.0]}, "gin", "MUTAG") == (
        "GIN on MUTAG reaches 85.0 ± 5.0 % accuracy over 3 folds of cross-validation — 35.0 points above a "
        "uniform guess over its 2 classes (50.0 %)")


def test_a_self_supervised_encoder_is_measured_against_itself_untrained():
    from trends.vision.findings import pretrain_finding

    metrics = {"knn_acc": 0.541, "random_init_knn_acc": 0.418, "knn_gain_points": 12.3}
    assert pretrain_finding(metrics, "the SimCLR encoder") == (
        "the SimCLR encoder's frozen features reach kNN accuracy 0.541 on the test images — 12.3 points above the "
        "same encoder untrained (0.418)")
    worse = pretrain_finding({"knn_acc": 0.30, "random_init_knn_acc": 0.32, "probe_acc": 0.4,
                              "random_init_probe_acc": 0.35, "supervised_acc": 0.8}, "the rotation encoder")
    assert "2.0 points below the same encoder untrained" in worse and "linear probe on them reaches 0.400" in worse
    assert worse.endswith("; the same encoder trained with labels reaches 0.800")


def test_vit_vs_cnn_states_the_cnns_lead_at_each_size():
    from trends.vit_vs_cnn.report import finding

    summary = {"table": {"resnet": {"0.1": 0.50, "0.4": 0.60, "1": 0.68}, "vit": {"0.1": 0.38, "0.4": 0.50, "1": 0.60}},
               "train_images": {"0.1": 5000, "0.4": 20000, "1": 50000}, "gap": {"0.1": 0.12, "0.4": 0.10, "1": 0.08},
               "crossover_images": None, "gap_trend": "narrows with more data"}
    assert finding(summary) == (
        "at 50,000 training images the CNN reaches 68.0 % test accuracy and the ViT 60.0 % — the CNN leads by 8.0 "
        "points (CNN − ViT: +12.0 at 5,000, +10.0 at 20,000 images; the gap narrows with more data) — and the ViT "
        "does not catch up inside the grid")
    assert finding({**summary, "crossover_images": 120_000}).endswith("the ViT catches up at ≈120,000 images")
    closes = {"cct": {"0.1": 0.57, "0.4": None, "1": 0.75}}  # None: the ViT was not behind there
    assert finding({**summary, "closes": closes}).endswith(
        "does not catch up inside the grid; cct closes 57–75 % of the ViT's gap to the CNN (the least at 5,000 images)")
    tie = {**summary, "table": {"resnet": {"1": 1.0}, "vit": {"1": 1.0}}, "gap": {"0.1": 0.0, "0.4": 0.0, "1": 0.0},
           "gap_trend": "stays the same"}
    assert finding(tie) == ("at 50,000 training images the CNN reaches 100.0 % test accuracy and the ViT 100.0 % — "
                            "the two tie (CNN − ViT: +0.0 at 5,000, +0.0 at 20,000 images; the gap stays the same)")
    alone = finding({"table": {"vit": {"0.2": 0.40}}, "train_images": {"0.2": 10000}, "classes": list("abcdefghij")})
    assert alone == ("at 10,000 training images vit reaches 40.0 % test accuracy — 30.0 points above a uniform guess "
                     "over its 10 classes (10.0 %)")


def test_scaling_states_the_ladder_and_its_law():
    from trends.scaling.analysis import finding

    rows = [{"n_layer": 1, "n_embd": 32, "params": 12384, "final_val_loss": 2.10},
            {"n_layer": 2, "n_embd": 48, "params": 55000, "final_val_loss": 1.95},
            {"n_layer": 4, "n_embd": 64, "params": 197000, "final_val_loss": 1.85}]
    ladder = {"mode": "ladder", "rungs": rows, "measured_largest": 1.85, "alpha": 0.312, "r2": 0.981,
              "uncertainty": {"sigma": {"alpha": 0.05}}, "loss_falls_every_rung": True}
    assert finding(ladder) == (
        "the largest of 3 GPT sizes (4×64, 197k non-embedding parameters) reaches a validation loss of 1.850 "
        "nats/char — 0.250 below the smallest (1×32, 12.4k non-embedding parameters: 2.100), falling at every step "
        "up — and L(N) = E + A·N^−α fits the ladder with α = 0.312 ± 0.050 (R² = 0.981)")
    isoflop = {"mode": "isoflop", "rungs": rows, "n_opt_exponent": 0.47, "every_optimum_inside": True,
               "budgets": [{"budget": 1e12, "tokens_per_param": 18.2}, {"budget": 1e13, "tokens_per_param": 21.3}]}
    assert finding(isoflop) == (
        "the loss-optimal size grows as N_opt ∝ C^0.47 over 2 compute budgets — 0.03 below Chinchilla's 0.5 — "
        "with 21.3 tokens per parameter at the largest budget (Chinchilla ≈ 20)")


DISTILL_ROWS = [
    {"model": "teacher", "params_%": 100.0, "seeds": 1, "val_loss": 1.70, "val_loss_std": None, "speedup": 1.0},
    {"model": "scratch", "params_%": 51.2, "seeds": 3, "val_loss": 1.931, "val_loss_std": 0.013, "speedup": 1.5,
     "vs_scratch_sigmas": None},
    {"model": "soft_targets", "params_%": 51.2, "seeds": 3, "val_loss": 1.85, "val_loss_std": 0.01, "speedup": 1.5,
     "vs_scratch_sigmas": 5.0},
    {"model": "distilbert", "params_%": 51.2, "seeds": 3, "val_loss": 1.728, "val_loss_std": 0.01, "speedup": 1.5,
     "vs_scratch_sigmas": 12.3}]


def test_distill_states_the_student_against_the_same_student_from_scratch():
    from trends.distill.findings import comparison_finding, student_finding

    assert comparison_finding(DISTILL_ROWS) == (
        "the DistilBERT-style student, 51 % of the teacher's parameters, reaches a validation loss of 1.728 "
        "nats/char (mean of 3 seeds) — 0.203 below the same student from scratch (1.931 ± 0.013, 12.3 σ) — and "
        "decodes 1.50× faster")
    alone = comparison_finding(DISTILL_ROWS[:2], "student.n_layer=2")  # no distilled student: against the teacher
    assert alone.startswith("at student.n_layer=2, the student trained from scratch") and "0.231 above its teacher" \
        in alone
    job = {"method": "distilbert",
           "metrics": {"best_val_loss": 1.728, "teacher_val_loss": 1.70, "params_percent": 51.2}}
    assert student_finding(job) == (
        "the DistilBERT-style student, 51 % of the teacher's parameters, reaches a best validation loss of 1.728 "
        "nats/char — 0.028 above its teacher (1.700 on the same validation windows)")


@pytest.mark.parametrize("variants, jobs, expected", [
    ({"model=gcn": [81.0, 82.0], "model=mlp": [59.0, 60.0]}, 4,
     "model=gcn is the best of 2 variants by test_acc: 81.50 ± 0.71 over 2 seeds — 22 above model=mlp "
     "(59.50 ± 0.71)"),
    ({"lr=0.01": [81.0], "lr=0.1": [80.0], "lr=1": [20.0]}, 4,
     "lr=0.01 is the best of 3 variants by test_acc: 81 — 1 above the runner-up, lr=0.1 (80), and 61 above the "
     "worst, lr=1 (20); 1 of 4 jobs did not complete"),
    ({"(defaults)": [81.0, 82.0, 83.0]}, 3, "test_acc 82.0 ± 1.0 over 3 seeds, from 81 to 83"),
    ({"(defaults)": []}, 2, None),
])
def test_a_plain_sweep_is_said_from_its_table(variants, jobs, expected):
    assert sweep_finding(variants, "test_acc", False, jobs) == expected


def test_the_page_prints_a_finding_as_a_sentence():
    assert as_sentence("the student reaches 1.73") == "The student reaches 1.73."
    assert as_sentence("model=gcn is the best of 2 variants.") == "model=gcn is the best of 2 variants."
    assert as_sentence("  ") is None and spread([1.0]) == "1"
    assert spread([1.72, 1.74, 1.73]) == "1.730 ± 0.010"
