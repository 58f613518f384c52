"""Which process this is: the one rule for the rank, read from the variables torchrun sets (RANK, WORLD_SIZE,
LOCAL_RANK, the env:// convention). No torch import, so the CLI can ask too; a plain run is rank 0 of 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", 1))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", 0)), world, int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes to the run folder and the terminal."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> slice:
        """This rank's contiguous share of n items; the shares in rank order are the n items in order (the first
        n % world ranks take one more). Used for evaluation, where every item must be seen exactly once."""
        size, extra = divmod(n, self.world)
        start = self.rank * size + min(self.rank, extra)
        return slice(start, start + size + (self.rank < extra))

    def per_rank_batch(self, global_batch: int) -> int:
        """Each rank's part of a global batch (the batch an optimiser step sees, whatever the number of ranks)."""
        if global_batch % self.world:
            raise UserError(f"train.batch_size={global_batch} is the global batch and must split evenly over "
                            f"{self.world} processes; pick a multiple of {self.world}")
        return global_batch // self.world

    def mine(self, batch):
        """This rank's equal share of a global batch (indices, or anything sliceable)."""
        size = len(batch) // self.world
        return batch[self.rank * size:(self.rank + 1) * size]
