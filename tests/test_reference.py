"""The production MIMNetwork against the literal transcription of docs/mim.md in ``reference_mim.py``.

Same weights in, same outputs and same parameter gradients out, in float64 (to 1e-10) and float32 (to
about 1e-5), over configurations that exercise every branch: 1x1 grid, patching, unequal widths (memory
projection), cascade and difference modes, the ST-LSTM-only stack, teacher forcing, conditioning,
several likelihood parameters with a chosen feedback parameter, and activation checkpointing.
"""

from __future__ import annotations

import pytest
import torch
from reference_mim import ReferenceMIM, load_production_weights, reference_grads_as_production

from darts_mim.nn import MIMNetwork


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: threads only add contention on the shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CONFIGS = {
    "1x1_grid": dict(target_channels=1, cond_channels=0, height=1, width=1, num_hidden=(3, 3)),
    "patch2_cond": dict(
        target_channels=2, cond_channels=1, height=4, width=6, num_hidden=(4, 4, 4), patch_size=2
    ),
    "unequal_widths": dict(
        target_channels=1, cond_channels=0, height=3, width=4, num_hidden=(3, 5, 2)
    ),
    "difference_mode": dict(
        target_channels=1,
        cond_channels=0,
        height=3,
        width=3,
        num_hidden=(4, 3, 4),
        diff_mode="difference",
    ),  # fmt: skip
    "stlstm_only": dict(
        target_channels=2, cond_channels=0, height=2, width=4, num_hidden=(4, 3), cell_type="stlstm"
    ),
    "no_layer_norm_params": dict(
        target_channels=1,
        cond_channels=2,
        height=4,
        width=4,
        num_hidden=(4, 4, 4),
        layer_norm=False,
        nr_params=3,
        feedback_param=1,
        patch_size=2,
    ),  # fmt: skip
    "one_layer": dict(target_channels=1, cond_channels=0, height=2, width=2, num_hidden=(4,)),
}


def _perturb(net: torch.nn.Module, gen: torch.Generator) -> None:
    """Move every parameter off its initial value so that zero-initialised weights count too."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _pair(name: str, dtype: torch.dtype, seed: int = 0, **extra):
    cfg = {**CONFIGS[name], "filter_size": 3, **extra}
    torch.manual_seed(seed)
    prod = MIMNetwork(**cfg).to(dtype)
    _perturb(prod, torch.Generator().manual_seed(seed + 1))
    ref_cfg = {k: v for k, v in cfg.items() if k != "activation_checkpointing"}
    ref = ReferenceMIM(**ref_cfg).to(dtype)
    load_production_weights(ref, prod)
    return cfg, prod, ref


def _inputs(cfg: dict, dtype: torch.dtype, t_in: int, n_out: int, batch: int, teacher: bool):
    gen = torch.Generator().manual_seed(7)
    c, h, w = cfg["target_channels"], cfg["height"], cfg["width"]
    kwargs = {}
    past = torch.randn(batch, t_in, c, h, w, generator=gen, dtype=dtype)
    if cfg["cond_channels"]:
        kwargs["cond"] = torch.randn(
            batch, t_in + n_out - 1, cfg["cond_channels"], h, w, generator=gen, dtype=dtype
        )
    if teacher:
        kwargs["future_frames"] = torch.randn(batch, n_out, c, h, w, generator=gen, dtype=dtype)
        kwargs["teacher_mask"] = torch.randint(0, 2, (batch, n_out - 1), generator=gen)
        kwargs["teacher_mask"][0] = 1  # at least one sample fully teacher-forced
        kwargs["teacher_mask"][1] = 0  # and one free running
    return past, kwargs


def _compare(name, dtype, atol, teacher=False, return_all=False, **extra):
    cfg, prod, ref = _pair(name, dtype, **extra)
    t_in, n_out = 3, 3
    past, kwargs = _inputs(cfg, dtype, t_in, n_out, batch=3, teacher=teacher)
    out_p = prod(past, n_out, return_all=return_all, **kwargs)
    out_r = ref(past, n_out, return_all=return_all, **kwargs)
    assert out_p.shape == out_r.shape
    torch.testing.assert_close(out_p, out_r, atol=atol, rtol=atol)
    # A loss that weighs every output differently, so that no gradient cancels by symmetry.
    weights = torch.randn(out_p.shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    (out_p * weights).sum().backward()
    (out_r * weights).sum().backward()
    ref_grads = reference_grads_as_production(ref, prod)
    n_nonzero = 0
    for pname, param in prod.named_parameters():
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        torch.testing.assert_close(
            grad, ref_grads[pname], atol=atol * 10, rtol=atol * 10, msg=pname
        )
        n_nonzero += bool(grad.abs().sum() > 0)
    # All but (at most) the MIM-N weights of a 1-frame difference path carry gradient here.
    assert n_nonzero >= 0.9 * len(ref_grads)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_reference_float64(name):
    _compare(name, torch.float64, atol=1e-10)


@pytest.mark.parametrize("name", ["patch2_cond", "unequal_widths", "difference_mode"])
def test_matches_reference_float32(name):
    _compare(name, torch.float32, atol=2e-5)


@pytest.mark.parametrize("name", ["patch2_cond", "difference_mode", "no_layer_norm_params"])
def test_matches_reference_teacher_forcing(name):
    _compare(name, torch.float64, atol=1e-10, teacher=True)


@pytest.mark.parametrize("name", ["unequal_widths", "stlstm_only"])
def test_matches_reference_return_all(name):
    _compare(name, torch.float64, atol=1e-10, return_all=True)


@pytest.mark.parametrize("name", ["patch2_cond", "unequal_widths"])
def test_activation_checkpointing_same_outputs_and_grads(name):
    _compare(name, torch.float64, atol=1e-10, teacher=True, activation_checkpointing=True)


def test_weight_mapping_rejects_mismatched_networks():
    prod = MIMNetwork(1, 0, 2, 2, num_hidden=(3, 3), filter_size=3)
    ref = ReferenceMIM(1, 0, 2, 2, num_hidden=(3, 3, 3), filter_size=3)
    with pytest.raises(ValueError, match="Parameter sets differ"):
        load_production_weights(ref, prod)
