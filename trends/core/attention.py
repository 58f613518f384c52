"""Scaled dot-product attention as every transformer here computes it, with one precision rule for CPUs."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool = False,
              dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(QKᵀ/√d)V over (B, heads, T, d) tensors, by torch's fused kernels.

    On a CPU the attention runs in fp32 even inside bf16 autocast: there PyTorch's bf16 flash-attention kernel is
    no faster than its fp32 one at head size 64 and 2–4× slower at 16–32 (the ViT's, the default GPT's; measured
    forward + backward on AVX512-BF16, see bench/precision.py), while the matrix products around it gain from bf16.
    On GPUs bf16 attention is the fast path, and its softmax statistics are fp32 inside the kernel either way.
    """
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        with torch.autocast("cpu", enabled=False):  # autocast would cast the inputs back to bf16
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=is_causal,
                                                 dropout_p=dropout_p)
        return out.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, dropout_p=dropout_p)
