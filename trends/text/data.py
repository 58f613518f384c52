"""Characters in, integer ids out: the corpus, its vocabulary, a 90/10 split and random training windows."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from omegaconf import DictConfig

from trends.core.data import data_root, fetch, writable_copy_of
from trends.errors import UserError
from trends.text.encoded import Ids, encode_file


@dataclass
class Corpus:
    train: Ids  # (N_train,) character ids, on disk (trends.text.encoded)
    val: Ids  # (N_val,) the text's last val_fraction
    vocab: list[str]  # id -> character

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            raise UserError(f"characters not in the training text: {''.join(unknown)!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in ids)


def text_path(cfg: DictConfig) -> Path:
    """The text file named by the data config: the shipped smoke corpus, a user file, or Tiny Shakespeare."""
    if cfg.name == "smoke":
        return Path(str(resources.files("trends.text").joinpath("smoke.txt")))
    if cfg.path is not None:
        path = Path(cfg.path).expanduser()
        if not path.is_file():
            raise UserError(f"data.path={cfg.path} does not exist; give the path of a UTF-8 text file")
        return path
    root = data_root(cfg.root)
    path = root / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        path = fetch(cfg.url, writable_copy_of(root, "tinyshakespeare") / "input.txt", cfg.sha256)
    return path


def load_corpus(cfg: DictConfig, block_size: int) -> Corpus:
    """The text as ids (encoded once, then read from the cache), its last val_fraction held out."""
    text = encode_file(text_path(cfg))
    train, val = text.ids.split(len(text.ids) - int(len(text.ids) * cfg.val_fraction))
    corpus = Corpus(train=train, val=val, vocab=text.vocab)
    if min(len(corpus.train), len(corpus.val)) <= block_size + 1:
        raise UserError(f"the text is too short for model.block_size={block_size}: "
                        f"{len(corpus.train)} train / {len(corpus.val)} val characters")
    return corpus


def random_windows(ids: Ids, batch_size: int, block_size: int, generator: torch.Generator,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows: inputs (B, T) and the same shifted by one character as targets, int64 on
    `device`. Only the windows' own characters are read."""
    starts = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator).numpy()
    windows = torch.from_numpy(ids.windows(starts, block_size + 1)).to(device, non_blocking=True)
    return windows[:, :-1], windows[:, 1:]
