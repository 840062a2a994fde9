"""NeRF baselines of the Enigmatisms/NeRF seed: MACs per sample point and per rendered image, IDE."""

from __future__ import annotations

import math

import pytest
import torch

import snnprof
from snnprof.models import create_model, get_entry
from snnprof.models.nerf_baselines import ide_coefficients


def linear_macs(*dims: tuple[int, int]) -> int:
    return sum(a * b for a, b in dims)


H, P, D = 256, 63, 27  # width, encoded point features, encoded direction features
NERF_MLP = linear_macs((P, H), (H, H), (H, H), (H, H), (H + P, H), (H, H), (H, 256), (256, 1), (256, 256),
                       (256 + D, 128), (128, 3))
PROPOSAL = linear_macs((P, H), (H, H), (H, H), (H, H), (H, 1))
DIR_IN = 1 + 128 + 38
REFNERF = linear_macs((P, H), (H, H), (H, H), (H, H), (H + P, H), (H, H), (H, H), (H, H), (H, 2), (H, 9),
                      (H, 128), (DIR_IN, H), (H, H), (H, H), (H, H), (H + DIR_IN, H), (H, H), (H, H), (H, H),
                      (H, 3)) + 9 * 19


def test_closed_form_numbers_of_the_spec() -> None:
    assert (NERF_MLP, PROPOSAL) == (527_872, 212_992)
    assert REFNERF == 1_071_616 + 171


@pytest.mark.parametrize(("name", "per_point", "samples"), [
    ("nerf_mlp", NERF_MLP, 128), ("mipnerf360_proposal", PROPOSAL, 64), ("refnerf", REFNERF, 192),
])
def test_macs_per_point_and_per_image(name: str, per_point: int, samples: int) -> None:
    model = create_model(name, samples=8, chunk=10).eval()
    assert create_model(name).samples == samples  # the seed's samples per ray by default
    views, image = 2, 4
    inputs = get_entry(name).make_inputs(model, views, 1, 0, image_size=image)
    result = snnprof.profile(model, inputs, strict=True, batch_size=views, time_steps=1)
    points = views * image * image * 8
    assert sum(s.points for s in model.last_render_stats) == points
    assert result.totals.macs == result.totals.dense_macs == points * per_point
    assert result.per_sample["macs"] == image * image * 8 * per_point
    assert result.totals.sops == 0


def test_outputs_of_the_zoo_runners() -> None:
    for name, last in (("nerf_mlp", 3), ("refnerf", 3), ("mipnerf360_proposal", 8)):
        entry = get_entry(name)
        model = create_model(name, samples=8).eval()
        inputs = entry.make_inputs(model, 1, 1, 0, image_size=4)
        with torch.no_grad():
            out = entry.run(model, inputs, 1)
        assert out.shape == (1, 4, 4, last) and torch.isfinite(out).all()


def reference_ide(xyz: torch.Tensor, kappa_inv: torch.Tensor, deg_view: int) -> torch.Tensor:
    """Ref-NeRF's IDE with complex numbers (multinerf's formula, as ported by the seed)."""
    mat, m, l_deg = ide_coefficients(deg_view)
    x, y, z = xyz[..., 0:1], xyz[..., 1:2], xyz[..., 2:3]
    vmz = torch.cat([z**i for i in range(mat.shape[0])], -1)
    vmxy = torch.cat([(x + 1j * y) ** int(k) for k in m], -1)
    ide = vmxy * (vmz @ mat.double()) * torch.exp(-0.5 * l_deg.double() * (l_deg.double() + 1) * kappa_inv)
    return torch.cat([ide.real, ide.imag], -1)


def test_ide_matches_the_complex_formula() -> None:
    model = create_model("refnerf").double()
    gen = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.randn(50, 3, generator=gen, dtype=torch.float64), dim=-1)
    rough = torch.rand(50, 1, generator=gen, dtype=torch.float64)
    ours = model.integrated_dir_enc(dirs, rough)
    assert ours.shape == (50, 38)
    torch.testing.assert_close(ours, reference_ide(dirs, rough, 4))


def test_spherical_harmonic_coefficients() -> None:
    mat, m, l_deg = ide_coefficients(4)
    assert mat.shape == (9, 19) and m.tolist()[:5] == [0, 1, 0, 1, 2]
    # Y_1^0 = sqrt(3 / (4 pi)) cos(theta)
    col = [i for i in range(19) if (int(m[i]), int(l_deg[i])) == (0, 1)][0]
    assert float(mat[1, col]) == pytest.approx(math.sqrt(3 / (4 * math.pi)))
