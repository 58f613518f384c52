"""The tricks since GPT-2 (`trends lm recipe=modern`), each against its reference formula, and the run features that
must keep working with them: decoding with a KV cache, exact resume with Muon's state."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import reference_then_interrupted, summary

from trends.text.model import GPT, GPTConfig, Rotary, rms_norm
from trends.text.optim import Chain, build_optimizer

MODERN = dict(position="rotary", norm="rmsnorm", mlp="relu2", qk_norm=True)


def small(**tricks) -> GPTConfig:
    return GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=False, **tricks)


def test_rotary_turns_each_channel_pair_by_position_times_its_frequency():
    rotary = Rotary(head_size=4, block_size=8)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(1, 1, 8, 4)  # the same vector at positions 0 … 7
    out = rotary(x)
    for position in range(8):
        for i, freq in enumerate((1.0, 10000 ** -0.5)):  # pairs (x0, x2) and (x1, x3)
            a, b, angle = x[0, 0, position, i].item(), x[0, 0, position, i + 2].item(), position * freq
            assert out[0, 0, position, i].item() == pytest.approx(a * math.cos(angle) - b * math.sin(angle), abs=1e-5)
            assert out[0, 0, position, i + 2].item() == pytest.approx(a * math.sin(angle) + b * math.cos(angle),
                                                                      abs=1e-5)
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1))  # a rotation keeps lengths
    q, k = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 1, 4)  # the product depends on the distance alone
    products = [(rotary(q, m) * rotary(k, n)).sum().item() for m, n in ((5, 2), (3, 0), (7, 4))]
    assert products == pytest.approx([products[0]] * 3, abs=1e-5)
    assert torch.allclose(rotary(x[:, :, 3:5], offset=3), out[:, :, 3:5])  # an offset is a later position


def test_rmsnorm_is_x_over_its_root_mean_square_times_a_gain():
    model = GPT(small(norm="rmsnorm"))
    norm = model.blocks[0].ln1
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
    x = torch.randn(3, 16)
    expected = x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + torch.finfo(x.dtype).eps) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert not hasattr(norm, "bias") or norm.bias is None


@pytest.mark.parametrize("mlp", ["gelu", "relu2", "swiglu"])
def test_every_mlp_has_about_the_weights_of_gpt2s(mlp):
    block = GPT(small(mlp=mlp)).blocks[0].mlp
    weights = sum(p.numel() for p in block.parameters())
    assert abs(weights - 8 * 16 * 16) <= 0.02 * 8 * 16 * 16, weights
    x = torch.randn(2, 16)
    h = block.fc(x)
    if mlp == "relu2":
        assert torch.allclose(block(x), block.proj(torch.relu(h) ** 2), atol=1e-6)
    if mlp == "swiglu":
        gate, value = h.chunk(2, dim=-1)
        assert torch.allclose(block(x), block.proj(gate * torch.sigmoid(gate) * value), atol=1e-6)


def test_qk_norm_gives_every_query_and_key_unit_rms():
    q = torch.randn(2, 1, 2, 5, 8) * 7  # (q and k, B, heads, T, head size)
    normed = rms_norm(q)
    assert torch.allclose(normed.pow(2).mean(dim=-1), torch.ones(2, 1, 2, 5), atol=1e-4)
    assert torch.allclose(normed, q / q.pow(2).mean(dim=-1, keepdim=True).sqrt(), atol=1e-5)
    with_norm, without = GPT(small(qk_norm=True)), GPT(small())
    assert with_norm.num_params() == without.num_params()  # no gains: the next layer scales


def test_the_modern_model_is_causal_untied_on_request_and_positions_come_from_rotary():
    model = GPT(small(**MODERN, tied=False)).eval()
    assert model.pos_emb is None and model.head.weight is not model.tok_emb.weight
    idx = torch.randint(0, 11, (2, 8))
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 11
    assert torch.allclose(model(changed)[0][:, :-1], model(idx)[0][:, :-1], atol=1e-6)
    assert model.flops_per_token() == 6 * (model.num_params() - 11 * 16) + 12 * 2 * 16 * 8  # the lookup excluded


def test_kv_cache_decoding_with_rotary_positions_equals_the_uncached_path():
    torch.manual_seed(0)
    model = GPT(small(**MODERN)).eval()
    for prompt_length in (1, 5, 8, 13):  # the window jumps: rotary positions restart with it
        prompt = torch.randint(0, 11, (2, prompt_length))
        runs = [model.generate(prompt, 40, temperature=0.9, top_k=6, generator=torch.Generator().manual_seed(3),
                               cache=cache) for cache in (True, False)]
        assert torch.equal(runs[0], runs[1]), prompt_length


def newton_schulz_reference(g: torch.Tensor) -> torch.Tensor:
    """U Vᵀ of g's SVD: the orthogonal matrix nearest to g, which Muon's five Newton–Schulz steps approximate."""
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    return u @ vh


def test_muon_moves_a_matrix_along_the_orthogonal_factor_of_its_gradient():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(6, 4))
    before = weight.detach().clone()
    grad = torch.randn(6, 4)
    optimizer = torch.optim.Muon([weight], lr=0.1, weight_decay=0.0, momentum=0.0, nesterov=False,
                                 adjust_lr_fn="match_rms_adamw")
    weight.grad = grad.clone()
    optimizer.step()
    update = (before - weight.detach()) / (0.1 * 0.2 * math.sqrt(6))  # match_rms_adamw: lr · 0.2 · √max(A, B)
    reference = newton_schulz_reference(grad)
    # five quintic Newton–Schulz steps in bf16 land every singular value in ≈ [0.7, 1.2], not exactly on 1
    assert torch.nn.functional.cosine_similarity(update.flatten(), reference.flatten(), dim=0) > 0.95
    singular = torch.linalg.svdvals(update)
    assert singular.min() > 0.6 and singular.max() < 1.3, singular


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    from omegaconf import OmegaConf

    model = GPT(small(**MODERN))
    o = OmegaConf.create({"name": "muon", "lr": 1e-3, "muon_lr": 2e-3, "muon_momentum": 0.95, "betas": [0.9, 0.99],
                          "weight_decay": 0.1})
    optimizer = build_optimizer(model, o)
    assert isinstance(optimizer, Chain)
    adamw, muon = optimizer.parts
    to_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    to_adamw = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert to_muon == {id(p) for p in model.hidden_matrices()} and not to_muon & to_adamw
    assert to_muon | to_adamw == {id(p) for p in model.parameters()}
    assert id(model.tok_emb.weight) in to_adamw and all(p.dim() == 2 for p in model.hidden_matrices())


SMOKE_LONG = ["--smoke", "recipe=modern", "train.steps=120", "train.eval_every=40", "train.log_every=40"]


def test_a_modern_run_resumes_exactly_muon_state_included(workdir, cli):
    reference, _ = reference_then_interrupted(workdir, "lm", SMOKE_LONG, cli)
    (run,) = (workdir / "outputs" / "lm").iterdir()
    code, output = cli("lm", "--resume", str(run))
    assert code == 0, output
    final, expected = summary(run), summary(reference)
    assert final["status"] == "completed" and final["resumed"] == 1
    for key in ("best_val_loss", "final_val_loss", "final_train_loss"):
        assert final["metrics"][key] == expected["metrics"][key], key
    code, output = cli("sample", str(run), "--tokens", "20")  # `trends sample` reads a modern model
    assert code == 0 and len(output) >= 20, output
