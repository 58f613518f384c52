"""Characters in, integer ids out: the corpus, its vocabulary, a 90/10 split and random training windows."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from omegaconf import DictConfig

from trends.core.data import data_root, fetch, writable_copy_of
from trends.core.errors import UserError


@dataclass
class Corpus:
    train: torch.Tensor  # (N_train,) int64 character ids
    val: torch.Tensor  # (N_val,)
    vocab: list[str]  # id -> character

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            raise UserError(f"characters not in the training text: {''.join(unknown)!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in ids)


def load_text(cfg: DictConfig) -> str:
    """The raw text named by the data config: the shipped smoke corpus, a user file, or Tiny Shakespeare."""
    if cfg.name == "smoke":
        return resources.files("trends.text").joinpath("smoke.txt").read_text(encoding="utf-8")
    if cfg.path is not None:
        path = Path(cfg.path).expanduser()
        if not path.is_file():
            raise UserError(f"data.path={cfg.path} does not exist; give the path of a UTF-8 text file")
    else:
        root = data_root(cfg.root)
        path = root / "tinyshakespeare" / "input.txt"
        if not path.is_file():
            path = fetch(cfg.url, writable_copy_of(root, "tinyshakespeare") / "input.txt", cfg.sha256)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def build_corpus(text: str, val_fraction: float) -> Corpus:
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    n_val = int(len(ids) * val_fraction)
    return Corpus(train=ids[: len(ids) - n_val], val=ids[len(ids) - n_val:], vocab=vocab)


def load_corpus(cfg: DictConfig, block_size: int) -> Corpus:
    corpus = build_corpus(load_text(cfg), cfg.val_fraction)
    if min(len(corpus.train), len(corpus.val)) <= block_size + 1:
        raise UserError(f"the text is too short for model.block_size={block_size}: "
                        f"{len(corpus.train)} train / {len(corpus.val)} val characters")
    return corpus


def random_windows(ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows: inputs (B, T) and the same shifted by one character as targets."""
    starts = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    windows = ids[starts[:, None] + offsets]
    windows = windows.to(device, non_blocking=True)
    return windows[:, :-1], windows[:, 1:]
