"""Image-quality metrics of rendered views: PSNR and SSIM (as DVGO/TensoRF evaluate test views).

Images are float tensors ``[H, W, 3]`` (or ``[V, H, W, 3]``, averaged over views) in ``[0, 1]``.
SSIM follows the usual 11x11 Gaussian window (sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03`` on each
channel with valid (unpadded) filtering, as in DVGO's ``rgb_ssim``.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F

__all__ = ["mse_to_psnr", "psnr", "ssim"]

logger = logging.getLogger(__name__)


def mse_to_psnr(mse: float) -> float:
    """``-10 log10(mse)`` in dB for images in [0, 1] (``inf`` for a perfect match)."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


def _views(img: torch.Tensor) -> torch.Tensor:
    """``[V, H, W, 3]`` float64 view of one image or a stack."""
    if img.dim() == 3:
        img = img.unsqueeze(0)
    if img.dim() != 4 or img.shape[-1] != 3:
        raise ValueError(f"expected images [H, W, 3] or [V, H, W, 3], got {tuple(img.shape)}")
    return img.detach().to(torch.float64)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR (dB) over views of ``pred`` against ``target`` (same shape, values in [0, 1])."""
    p, t = _views(pred), _views(target)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {tuple(p.shape)} vs {tuple(t.shape)}")
    mses = ((p - t) ** 2).mean(dim=(1, 2, 3)).tolist()
    return sum(mse_to_psnr(m) for m in mses) / len(mses)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """Normalised 1-d Gaussian ``[size]`` (float64)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable valid filtering of ``[N, C, H, W]`` per channel."""
    channels = x.shape[1]
    k = window.numel()
    wx = window.reshape(1, 1, 1, k).repeat(channels, 1, 1, 1)
    wy = window.reshape(1, 1, k, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(x, wx, groups=channels), wy, groups=channels)


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM over views and channels (images need at least ``window`` pixels per side).

    Args:
        pred: rendered images ``[H, W, 3]`` or ``[V, H, W, 3]`` in [0, 1].
        target: ground truth, same shape.
        window: Gaussian window size (11).
        sigma: Gaussian standard deviation (1.5).
    """
    p, t = _views(pred), _views(target)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch: {tuple(p.shape)} vs {tuple(t.shape)}")
    if min(p.shape[1:3]) < window:
        raise ValueError(f"images of {p.shape[1]}x{p.shape[2]} pixels are smaller than the {window}-pixel window")
    x, y = p.permute(0, 3, 1, 2), t.permute(0, 3, 1, 2)
    w = _gaussian_window(window, sigma)
    mu_x, mu_y = _blur(x, w), _blur(y, w)
    var_x = (_blur(x * x, w) - mu_x**2).clamp(min=0)
    var_y = (_blur(y * y, w) - mu_y**2).clamp(min=0)
    cov = _blur(x * y, w) - mu_x * mu_y
    cov = torch.sign(cov) * torch.minimum(torch.sqrt(var_x * var_y), cov.abs())  # DVGO's clipping
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float((num / den).mean())
