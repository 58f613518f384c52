"""torchrun support: one process per device, gradients all-reduced, rank 0 alone writes to the run folder.

Launched as `torchrun --standalone --nproc-per-node=N -m trends <demo> ...`: torchrun sets RANK, WORLD_SIZE and
LOCAL_RANK; without them everything here is a no-op and a run is a single process. A demo keeps its batch size
global (what one optimiser step sees), gives each rank an equal share of every batch, and shards evaluation.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as collectives
import torch.nn as nn

from trends.errors import UserError
from trends.ranks import Dist


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and pick this rank's device."""
    d = Dist.from_env()
    if not d.active:
        return d, device
    if device.type == "cuda":
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d, device


def _on() -> bool:
    return dist.is_available() and dist.is_initialized()


def data_parallel(model: nn.Module, d: Dist) -> nn.Module:
    """`model` wrapped in DistributedDataParallel (gradients all-reduced, i.e. averaged, during backward), or itself
    in a single process. BatchNorm takes its statistics over the global batch, so a step is one process's step on
    that batch; SimCLR needs it (Chen et al. 2020, "Global BN": per-device statistics leak which device a view was
    on, and the model can lower the contrastive loss with that instead of learning). PyTorch's SyncBatchNorm on
    GPUs, GlobalBatchNorm on CPUs, where that has no kernel. Call before building the optimiser: the parameters
    are kept."""
    if not d.active:
        return model
    if next(model.parameters()).is_cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        model = GlobalBatchNorm.convert(model)
    return nn.parallel.DistributedDataParallel(model)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (1-d or 2-d) whose training statistics are sums over every rank's batch: what SyncBatchNorm does
    on GPUs, in plain tensor operations that run on gloo. In eval mode, or in one process, it is BatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2-D, 3-D or 4-D input (got {x.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _on()):
            return super().forward(x)
        dtype, x = x.dtype, x.float()  # the statistics in fp32, as BatchNorm keeps them under bf16 autocast
        dims = [0, *range(2, x.dim())]  # all but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_full((1,), x.numel() / x.shape[1])])
        total = collectives.all_reduce(local)  # its backward sums too: each rank's x reaches every rank's loss
        channels = x.shape[1]
        count = total[-1]
        mean = total[:channels] / count
        var = (total[channels:2 * channels] / count - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked.item()
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / (count - 1), momentum)  # unbiased, as BatchNorm
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y).to(dtype)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """`module` with every BatchNorm replaced by a GlobalBatchNorm sharing its parameters and buffers."""
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
            if module.affine:
                converted.weight, converted.bias = module.weight, module.bias
            if module.track_running_stats:
                converted.running_mean, converted.running_var = module.running_mean, module.running_var
                converted.num_batches_tracked = module.num_batches_tracked
            converted.train(module.training)
            return converted
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module


def broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank. DDP sends them at the start of each training
    forward, after which each rank updates its copy with its own share of the batch: evaluation, which shards the
    images over the ranks, must first agree on one model."""
    if _on():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of `x` (N_rank, ...) concatenated in rank order, on every rank; ranks may hold different
    numbers of rows (padded for the collective, trimmed after). No gradient flows back."""
    if not _on():
        return x
    x = x.detach().contiguous()
    sizes = [torch.zeros((), dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(len(x), device=x.device))
    longest = int(max(sizes))
    padded = torch.cat([x, x.new_zeros(longest - len(x), *x.shape[1:])])
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:int(n)] for part, n in zip(parts, sizes)])


def gather_with_gradient(x: torch.Tensor) -> torch.Tensor:
    """For losses that compare every example with every other across the global batch (NT-Xent's negatives):
    equal-sized (B, ...) rows from every rank → (world·B, ...) in rank order; gradients reach each rank's own
    rows.

    Every rank computes the same loss from the gathered rows, so a row's gradient is the sum of what each rank's
    backward sends it (torch's all_gather sums them): world × dLoss/drow. DDP's averaging of parameter gradients
    divides the world back out, and the step equals one process's on the global batch."""
    return torch.cat(collectives.all_gather(x)) if _on() else x


def sum_across_ranks(t: torch.Tensor) -> torch.Tensor:
    """In place: the sum of `t` over ranks (counts and sums of a sharded evaluation)."""
    if _on():
        dist.all_reduce(t)
    return t


def mean_across_ranks(value: float, device: torch.device) -> float:
    if not _on():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if it is true on one (Ctrl-C reaches the ranks at different steps)."""
    if not _on():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj) -> list:
    """Every rank's `obj`, in rank order (for per-rank RNG states in a checkpoint)."""
    if not _on():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def rank_entry(per_rank: list, d: Dist):
    """This rank's entry of a per-rank list from a checkpoint (RNG streams): a run resumes on as many processes."""
    if len(per_rank) != d.world:
        count = f"{len(per_rank)} process{'es' if len(per_rank) > 1 else ''}"
        how = "without torchrun" if len(per_rank) == 1 else f"with torchrun --nproc-per-node={len(per_rank)}"
        raise UserError(f"the run was trained on {count}; resume it on as many ({how})")
    return per_rank[d.rank]


def shutdown() -> None:
    """Leave the process group together, at the end of a run: with gloo a rank that tears its connections down
    while another still uses them can abort, so every rank first waits for rank 0 to finish its report."""
    if _on():
        dist.barrier()
        dist.destroy_process_group()
