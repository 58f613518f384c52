"""A decoder-only transformer, GPT-2's by default — pre-LayerNorm blocks, learned positions, causal attention via
scaled_dot_product_attention, a GELU MLP, input and output embeddings tied — with the tricks that came after it, one
switch each (`trends lm recipe=modern` turns them on, `trends recipe` one at a time):

    position: rotary   rotary position embeddings (Su et al. 2021, RoFormer): q and k rotated by their position
    norm: rmsnorm      RMSNorm (Zhang & Sennrich 2019): LayerNorm without the mean and the bias
    mlp: relu2         squared ReLU (So et al. 2021, Primer); swiglu: a gated SiLU MLP (Shazeer 2020), at matched
                       parameters
    qk_norm: true      queries and keys RMS-normalised per head before their product (Henry et al. 2020)
    tied: false        an output head of its own

Decoding keeps a key/value cache."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from trends.core.attention import attention
from trends.core.modules import num_params


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float
    bias: bool
    position: str = "learned"  # learned | rotary
    norm: str = "layernorm"  # layernorm | rmsnorm
    mlp: str = "gelu"  # gelu | relu2 | swiglu
    qk_norm: bool = False
    tied: bool = True

    def __post_init__(self):
        for key, allowed in (("position", ("learned", "rotary")), ("norm", ("layernorm", "rmsnorm")),
                             ("mlp", ("gelu", "relu2", "swiglu"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"model.{key}={getattr(self, key)} is not one of {', '.join(allowed)}")


class RMSNorm(nn.RMSNorm):
    """torch.nn.RMSNorm computed in fp32, as autocast computes LayerNorm, and returned in the input's dtype. On CPUs
    torch's kernel is up to 15× faster on a 2-D input than on the same values in 4-D (measured: 1.7 vs 20 ms forward
    and backward for a (32, 4, 64, 32) batch), hence the flattening."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float | None = None) -> torch.Tensor:
    """x / sqrt(mean(x²) + eps) over the last dimension (× weight), in fp32, in x's dtype."""
    flat = x.float().reshape(-1, x.shape[-1])
    return F.rms_norm(flat, (x.shape[-1],), weight, eps).view(x.shape).type_as(x)


def norm(cfg: GPTConfig, size: int) -> nn.Module:
    return RMSNorm(size) if cfg.norm == "rmsnorm" else nn.LayerNorm(size, bias=cfg.bias)


class Rotary(nn.Module):
    """Rotary position embeddings: each pair of a head's channels (i, i + d/2) is rotated by the angle
    position × base^(−2i/d), so that the product of a query and a key depends on their positions' difference alone.
    The cos and sin of every position are computed once (buffers, not weights: checkpoints do not hold them)."""

    def __init__(self, head_size: int, block_size: int, base: float = 10000.0):
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
        angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # (T, d/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """x: (…, T, d) at positions offset … offset + T − 1."""
        T, half = x.shape[-2], x.shape[-1] // 2
        cos, sin = self.cos[offset:offset + T], self.sin[offset:offset + T]
        x1, x2 = x[..., :half].float(), x[..., half:].float()
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class KVCache:
    """The keys and values of the context decoded so far, per layer, (B, heads, T, head size) each: the next token
    then costs one token's forward pass instead of the whole context's."""

    def __init__(self, n_layer: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        return self.length_of(0)

    def length_of(self, layer: int) -> int:
        """Tokens cached for `layer` (a layer sees the new token's keys only once it has extended its own)."""
        return 0 if self.keys[layer] is None else self.keys[layer].shape[2]

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k, v = torch.cat([self.keys[layer], k], dim=2), torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.layer = layer  # its slot in a KVCache
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)
        head_size = cfg.n_embd // cfg.n_head
        self.qk_norm = cfg.qk_norm  # without gains, as modded-nanogpt: the next layer's weights can scale
        self.rotary = Rotary(head_size, cfg.block_size) if cfg.position == "rotary" else None

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        qk, v = qkv[:2], qkv[2]  # queries and keys are normalised and rotated together: half the kernels
        if self.qk_norm:
            qk = rms_norm(qk)
        if self.rotary is not None:  # rotated at their own positions: the cache holds rotated keys
            qk = self.rotary(qk, cache.length_of(self.layer) if cache is not None else 0)
        q, k = qk[0], qk[1]
        if cache is not None:
            k, v = cache.extend(self.layer, k, v)
        # T > 1 only from an empty cache (GPT.forward checks): then causal within x; one new token sees everything.
        y = attention(q, k, v, is_causal=T > 1, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    """d → 4d → d with GELU (GPT-2) or squared ReLU; SwiGLU's gate and value take two thirds of that width each,
    so that every variant has 8d² weights."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.kind = cfg.mlp
        hidden = 8 * cfg.n_embd // 3 if cfg.mlp == "swiglu" else 4 * cfg.n_embd
        self.fc = nn.Linear(cfg.n_embd, 2 * hidden if cfg.mlp == "swiglu" else hidden, bias=cfg.bias)
        self.proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.kind == "swiglu":
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.relu(h).square() if self.kind == "relu2" else F.gelu(h)
        return self.drop(self.proj(h))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.ln1 = norm(cfg, cfg.n_embd)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln2 = norm(cfg, cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.position == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, layer) for layer in range(cfg.n_layer))
        self.ln_f = norm(cfg, cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tied:
            self.head.weight = self.tok_emb.weight  # tied: one matrix reads and writes characters
        self.apply(self._init)
        # GPT-2: scale residual projections by 1/sqrt(2 * depth) so the residual stream's variance stays put.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None):
        """idx: (B, T) ids → logits (B, T, vocab) and, given targets (B, T), the mean cross-entropy in nats.
        With a cache, idx continues the context the cache holds: the whole context into an empty cache, then one
        token at a time."""
        T = idx.shape[1]
        past = cache.length if cache is not None else 0
        if past and T > 1:
            raise ValueError("a filled KVCache takes one new token at a time")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(past, past + T, device=idx.device))
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, cache)
        logits = self.head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once."""
        return num_params(self)

    def _positions(self) -> int:
        """The learned position table's weights (none with rotary positions)."""
        return self.pos_emb.weight.numel() if self.pos_emb is not None else 0

    def non_embedding_params(self) -> int:
        """Parameters without the token and position embeddings: Kaplan et al.'s N, the x of a scaling law."""
        return self.num_params() - self.tok_emb.weight.numel() - self._positions()

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6N for the weights (the head's matrix product included; the lookups — the
        position table, and the token table when the head has its own matrix — not) plus 12·L·d·T for attention
        scores (PaLM appendix B)."""
        c = self.cfg
        lookups = self._positions() + (0 if c.tied else self.tok_emb.weight.numel())
        return 6 * (self.num_params() - lookups) + 12 * c.n_layer * c.n_embd * c.block_size

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The blocks' 2-D weights: what Muon orthogonalises (embeddings, head, gains and biases stay with AdamW)."""
        return [p for p in self.blocks.parameters() if p.dim() == 2]

    def param_groups(self, weight_decay: float, exclude: list[nn.Parameter] = ()) -> list[dict]:
        """Decay only the matrices of Linear layers; biases, norms and embeddings are left alone. `exclude`: the
        parameters another optimizer takes."""
        embeddings = {id(self.tok_emb.weight)} | ({id(self.pos_emb.weight)} if self.pos_emb is not None else set())
        taken = {id(p) for p in exclude}
        mine = [p for p in self.parameters() if id(p) not in taken]
        decay = [p for p in mine if p.dim() >= 2 and id(p) not in embeddings]
        no_decay = [p for p in mine if p.dim() < 2 or id(p) in embeddings]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    @torch.inference_mode()
    def generate(self, idx: torch.Tensor, new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, cache: bool = True) -> torch.Tensor:
        """Extend idx (B, T) by `new_tokens` sampled characters.

        The context is the text since a window start: when it would exceed block_size, the start jumps to keep the
        last half block. (Sliding it one character at a time, as nanoGPT does, moves every character to a new
        position: nothing computed could be kept.) With `cache` each window is read once and every next character
        costs one token's forward pass; without it every step recomputes the window. Both give the same characters
        for the same generator. The characters go into one tensor allocated up front (no copy of the text per
        character): what a character costs outside the blocks is the embedding, the head and the draw."""
        block, length = self.cfg.block_size, idx.shape[1]
        out = torch.empty(idx.shape[0], length + new_tokens, dtype=idx.dtype, device=idx.device)
        out[:, :length] = idx
        start = max(0, length - block)
        kv = None
        for _ in range(new_tokens):
            if length - start > block:
                start, kv = length - max(1, block // 2), None
            if not cache:
                logits, _ = self(out[:, start:length])
            elif kv is None:
                kv = KVCache(self.cfg.n_layer)
                logits, _ = self(out[:, start:length], cache=kv)
            else:
                logits, _ = self(out[:, length - 1:length], cache=kv)
            logits = logits[:, -1, :].float() / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            out[:, length] = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
            length += 1
        return out
