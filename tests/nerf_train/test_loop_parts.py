"""Pieces of the NeRF loops against hand values: PSNR/SSIM, masked Adam, DVGO's loss, LR schedules, settings."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import pytest
import torch

from snnprof.errors import ConfigError
from snnprof.models.nerf_metrics import psnr, ssim
from snnprof.models.nerf_render import RenderOutput
from snnprof.reference_impls.nerf_common import MaskedAdam, parse_train
from snnprof.reference_impls.nerf_mlp_train import NeRFMLPSettings, NeRFTrainer
from snnprof.reference_impls.nerf_train import DVGOSettings, TensoRFSettings, dvgo_loss


def test_psnr_hand_values() -> None:
    target = torch.full((4, 4, 3), 0.5, dtype=torch.float64)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)  # MSE 0.01
    views = torch.stack([target + 0.1, target + 0.01])  # MSE 1e-2 and 1e-4: 20 and 40 dB, mean 30
    assert psnr(views, torch.stack([target, target])) == pytest.approx(30.0, abs=1e-9)
    assert math.isinf(psnr(target, target))


def test_ssim_hand_values() -> None:
    img = torch.rand(12, 13, 3, generator=torch.Generator().manual_seed(0))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    a, b, c1 = 0.2, 0.7, 0.01**2  # constant images: zero variances, SSIM = luminance term only
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    const_a, const_b = (torch.full((11, 11, 3), v, dtype=torch.float64) for v in (a, b))
    assert ssim(const_a, const_b) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.zeros(8, 8, 3), torch.zeros(8, 8, 3))


def _first_step(grad: torch.Tensor, lr: float, beta2: float = 0.99, eps: float = 1e-8) -> torch.Tensor:
    """DVGO's Adam update at step 1: lr * sqrt(1-b2)/(1-b1) * (1-b1) g / (sqrt((1-b2) g^2) + eps)."""
    return lr * math.sqrt(1 - beta2) * grad / (math.sqrt(1 - beta2) * grad.abs() + eps)


def test_masked_adam_first_step_by_hand() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
    opt = MaskedAdam([p], lr=0.1)
    p.grad = torch.tensor([0.5, -0.25, 0.0])
    opt.step()
    torch.testing.assert_close(p.data, torch.tensor([1.0, 2.0, 3.0]) - _first_step(p.grad, 0.1))


def test_skip_zero_grad_leaves_untouched_elements_and_moments() -> None:
    def two_steps(skip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.nn.Parameter(torch.zeros(2))
        opt = MaskedAdam([{"params": [p], "skip_zero_grad": skip}], lr=0.1)
        p.grad = torch.tensor([1.0, 1.0])
        opt.step()
        after_one = p.data.clone()
        p.grad = torch.tensor([0.0, 1.0])
        opt.step()
        return after_one, p.data.clone()

    one, two = two_steps(skip=True)
    assert two[0] == one[0] and two[1] < one[1]
    one, two = two_steps(skip=False)
    assert two[0] < one[0]  # plain Adam keeps moving on the momentum


def test_per_voxel_learning_rate_scales_the_density_update() -> None:
    density = torch.nn.Parameter(torch.zeros(1, 1, 2, 1, 1))
    k0 = torch.nn.Parameter(torch.zeros(1, 3, 2, 1, 1))
    opt = MaskedAdam([{"params": [density]}, {"params": [k0]}], lr=0.1)
    opt.set_pervoxel_lr(torch.tensor([1.0, 4.0]).reshape(1, 1, 2, 1, 1))
    density.grad, k0.grad = torch.ones_like(density), torch.ones_like(k0)
    opt.step()
    step = float(_first_step(torch.tensor(1.0), 0.1))
    torch.testing.assert_close(density.data.flatten(), torch.tensor([-0.25 * step, -step]))
    torch.testing.assert_close(k0.data, torch.full_like(k0, -step))  # other shapes: no per-voxel rate
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["state"][0]["step"] == 1


def test_dvgo_loss_by_hand() -> None:
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    out = RenderOutput(
        rgb=torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        alphainv_last=torch.tensor([0.5, 0.25]),
        weights=torch.tensor([0.5, 0.25, 1.0]),
        raw_rgb=torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
        ray_id=torch.tensor([0, 0, 1]),
    )
    mse = 0.25 / 6
    entropy = (-(0.5 * math.log(0.5) * 2) - (0.25 * math.log(0.25) + 0.75 * math.log(0.75))) / 2
    rgbper = (0.5 * 0.0 + 0.25 * 2.0 + 1.0 * 1.0) / 2  # sum_i w_i |rgb_i - c_ray|^2 / rays
    loss, got_mse = dvgo_loss(out, target, 0.01, 0.1)
    assert got_mse == pytest.approx(mse, rel=1e-6)
    assert float(loss) == pytest.approx(mse + 0.01 * entropy + 0.1 * rgbper, rel=1e-6)
    assert float(dvgo_loss(out, target, 0.0, 0.0)[0]) == pytest.approx(mse, rel=1e-6)


def test_nerf_learning_rate_schedule_by_hand() -> None:
    trainer = NeRFTrainer.__new__(NeRFTrainer)
    trainer.s = SimpleNamespace(warmup_steps=100, lr_decay_steps=1000.0, min_ratio=0.01)
    trainer.base_lr = 3e-4
    assert trainer.lr_at(0) == pytest.approx(3e-6)
    assert trainer.lr_at(50) == pytest.approx(3e-4 * (0.01 * 0.5 + 0.5))
    assert trainer.lr_at(100) == pytest.approx(3e-4)
    assert trainer.lr_at(1100) == pytest.approx(3e-5)
    assert trainer.lr_at(10**6) == pytest.approx(3e-6)  # floored at min_ratio


def test_parse_train_defaults_coercion_and_errors() -> None:
    s = parse_train({"batch_rays": 64, "lr_density": 1, "epochs": 3}, "x.toml", DVGOSettings)
    assert s.batch_rays == 64 and s.lr_density == 1.0 and isinstance(s.lr_density, float)
    assert s.coarse_iters == 5000 and s.lr_decay_steps == 20000.0 and s.render_dir is None and s.pervoxel_lr
    assert s.pg_scale == [1000, 2000, 3000, 4000] and s.decay_after_scale == 1.0
    nerf = parse_train({}, "x.toml", NeRFMLPSettings)
    assert nerf.warmup_steps == 500 and nerf.proposal and (nerf.coarse_samples, nerf.fine_samples) == (64, 128)
    assert (nerf.proposal_weight, nerf.normal_weight, nerf.backface_weight) == (1.0, 4e-4, 0.1)
    bad = [({"bogus": 1}, "train.bogus", "unknown key"), ({"batch_rays": True}, "train.batch_rays", "integer"),
           ({"batch_rays": 1.5}, "train.batch_rays", "integer"),
           ({"coarse_iters": -1}, "train.coarse_iters", "non-negative"),
           ({"lr_k0": 0}, "train.lr_k0", "positive number"), ({"pervoxel_lr": 1}, "train.pervoxel_lr", "boolean"),
           ({"render_dir": 3}, "train.render_dir", "string"), ({"lr": 0.1}, "train.lr", "unknown key"),
           ({"pg_scale": [0]}, "train.pg_scale[0]", "positive integer")]
    for table, key, words in bad:
        with pytest.raises(ConfigError, match=words) as err:
            parse_train(table, "x.toml", DVGOSettings)
        assert err.value.key == key and err.value.path == "x.toml"
    with pytest.raises(ConfigError, match="integer") as err:
        parse_train({"alpha_mask_updates": [1, -2]}, "x.toml", TensoRFSettings)
    assert err.value.key == "train.alpha_mask_updates[1]"
    with pytest.raises(ConfigError, match="one of 'seed' or 'torch'"):
        parse_train({"weight_init": "xavier"}, "x.toml", NeRFMLPSettings)
