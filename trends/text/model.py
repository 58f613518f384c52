"""A decoder-only transformer: pre-LayerNorm blocks, causal attention via scaled_dot_product_attention,
GELU MLP, input and output embeddings tied; decoding with a key/value cache."""
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


class KVCache:
    """The keys and values of the context decoded so far, per layer, (B, heads, T, head size) each: the next token
    then costs one token's forward pass instead of the whole context's."""

    def __init__(self, n_layer: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.extend(self.layer, k, v)
        # T > 1 only from an empty cache (GPT.forward checks): then causal within x; one new token sees everything.
        y = attention(q, k, v, is_causal=T > 1, dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
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
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, layer) for layer in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
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
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x, cache)
        logits = self.head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once."""
        return num_params(self)

    def non_embedding_params(self) -> int:
        """Parameters without the token and position embeddings: Kaplan et al.'s N, the x of a scaling law."""
        return self.num_params() - self.tok_emb.weight.numel() - self.pos_emb.weight.numel()

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6N for the weights (the tied head's matrix product included, the position
        lookup not) plus 12·L·d·T for attention scores (PaLM appendix B)."""
        c = self.cfg
        n = self.num_params() - self.pos_emb.weight.numel()
        return 6 * n + 12 * c.n_layer * c.n_embd * c.block_size

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Decay only the matrices of Linear layers; biases, norms and embeddings are left alone."""
        embeddings = {id(self.tok_emb.weight), id(self.pos_emb.weight)}
        decay = [p for p in self.parameters() if p.dim() >= 2 and id(p) not in embeddings]
        no_decay = [p for p in self.parameters() if p.dim() < 2 or id(p) in embeddings]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, cache: bool = True) -> torch.Tensor:
        """Extend idx (B, T) by `new_tokens` sampled characters.

        The context is the text since a window start: when it would exceed block_size, the start jumps to keep the
        last half block. (Sliding it one character at a time, as nanoGPT does, moves every character to a new
        position: nothing computed could be kept.) With `cache` each window is read once and every next character
        costs one token's forward pass; without it every step recomputes the window. Both give the same characters
        for the same generator."""
        block = self.cfg.block_size
        start = max(0, idx.shape[1] - block)
        kv = None
        for _ in range(new_tokens):
            if idx.shape[1] - start > block:
                start, kv = idx.shape[1] - max(1, block // 2), None
            if not cache:
                logits, _ = self(idx[:, start:])
            elif kv is None:
                kv = KVCache(self.cfg.n_layer)
                logits, _ = self(idx[:, start:], cache=kv)
            else:
                logits, _ = self(idx[:, -1:], cache=kv)
            logits = logits[:, -1, :].float() / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
        return idx
