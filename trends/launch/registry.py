"""The demos `trends` knows: what users type, the config it composes, the module that trains, and what each
declares for its launch by import strings (its value checks, its pre-launch hook), imported only when it launches."""
from __future__ import annotations

import importlib
import importlib.resources
from dataclasses import dataclass

from trends.errors import UserError

CONFIGS = "trends.conf"  # trends/conf/: Hydra reads it as pkg://trends.conf, installed or editable


def config_files():
    """trends/conf/ as importlib.resources sees it (a folder, or files inside an installed wheel)."""
    return importlib.resources.files(CONFIGS)


@dataclass(frozen=True)
class Demo:
    command: str  # what users type: `trends vit-vs-cnn`
    config: str  # primary config: trends/conf/<config>.yaml
    entry: str  # module with main(cfg, run)
    help: str
    issue: int  # where it is specified, for the "not built yet" message
    sweep: bool = False  # the command is itself a sweep (its config lists the jobs): every run is a multirun
    headline: str = ""  # the summary metric a run is judged by (a search's default objective; its name says which
    #                     way is better: trends.records.search.direction)
    checks: str | None = None  # "module:name" of the trends.core.config.Checks its own keys need, beyond the shared
    before_launch: str | None = None  # "module:function" that completes the overrides before a launch:
    #                                   (overrides, *, compose, train, say) -> overrides (distill finds its teacher)

    @property
    def available(self) -> bool:
        return config_files().joinpath(f"{self.config}.yaml").is_file()

    def group_options(self) -> list[str]:
        """`group=option` for every group the primary config's defaults list names, read from the folders its Hydra
        search path adds (`pkg://trends.conf.<name>`: trends/conf/<demo>/ and shared ones such as
        trends/conf/vision/)."""
        from omegaconf import OmegaConf

        primary = OmegaConf.create(config_files().joinpath(f"{self.config}.yaml").read_text())
        chosen = {key for entry in primary.defaults if not isinstance(entry, str) for key in entry}
        prefix = f"pkg://{CONFIGS}."
        folders = [config_files().joinpath(*p[len(prefix):].split(".")) for p in primary.hydra.searchpath
                   if p.startswith(prefix)]
        groups = sorted((g for folder in folders for g in folder.iterdir() if g.is_dir() and g.name in chosen),
                        key=lambda g: g.name)
        return [f"{g.name}={o.name[:-5]}" for g in groups for o in sorted(g.iterdir(), key=lambda o: o.name)
                if o.name.endswith(".yaml")]


DEMOS = [
    Demo("contrastive", "contrastive", "trends.contrastive.train",
         "Self-supervised learning: SimCLR and six methods after it, kNN and linear probe.", 4, headline="knn_acc",
         checks="trends.vision.checks:CHECKS"),
    Demo("gnn", "gnn", "trends.gnn.train",
         "Graph neural networks on citation graphs and molecules, 2 to 64 layers deep.", 3,
         headline="test_acc"),
    Demo("lm", "lm", "trends.lm.train", "A character-level GPT on Tiny Shakespeare (or any text file).", 2,
         headline="best_val_loss", checks="trends.text.checks:CHECKS"),
    Demo("scaling", "scaling", "trends.scaling.train",
         "Language models get bigger: a ladder of GPT sizes and the power law of their losses.", 13, sweep=True,
         checks="trends.text.checks:CHECKS"),
    Demo("recipe", "recipe", "trends.recipe.train",
         "The transformer recipe since GPT-2, trick by trick: a ladder of `trends lm` runs, one trick more each.", 26,
         sweep=True, checks="trends.text.checks:CHECKS"),
    Demo("distill", "distill", "trends.distill.train",
         "Small distilled language models: students of a `trends lm` teacher, from scratch, soft targets, DistilBERT.",
         14, sweep=True, checks="trends.distill.checks:CHECKS", before_launch="trends.distill.launch:with_teacher"),
    Demo("pretext", "pretext", "trends.pretext.train",
         "Self-supervised pretext tasks: where a patch lies, rotation, jigsaw; evaluated like contrastive.", 12,
         headline="knn_acc", checks="trends.pretext.checks:CHECKS"),
    Demo("vit-vs-cnn", "vit_vs_cnn", "trends.vit_vs_cnn.train",
         "Vision Transformer against a CNN on growing fractions of the data.", 5,
         headline="gap",  # gap/<largest fraction>: the CNN's lead
         checks="trends.vit_vs_cnn.checks:CHECKS"),
]


def demo_named(command: str) -> Demo:
    demo = next((d for d in DEMOS if d.command == command), None)
    if demo is None:
        raise UserError(f"no demo called {command!r}; one of: {', '.join(d.command for d in DEMOS)}")
    return demo


def imported(name: str):
    """The object an import string names: "package.module:attribute"."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)
