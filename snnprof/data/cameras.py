"""Blender / Synthetic-NeRF cameras: poses on a sphere and the rays of a pinhole camera.

OpenGL camera looking down -z, y up (``docs/seed_models.md`` §1.7); shared by the Blender reader,
the synthetic-scene writer and the NeRF zoo models' input generators.
"""

from __future__ import annotations

import math

import torch

__all__ = ["CAMERA_ANGLE_X", "camera_rays", "pose_spherical"]

#: Horizontal field of view of the Blender lego views (radians).
CAMERA_ANGLE_X = 0.6911112070083618


def pose_spherical(azimuth_deg: float, elevation_deg: float, radius: float) -> torch.Tensor:
    """Camera-to-world matrix ``[4, 4]`` of a camera on a sphere looking at the origin (NeRF convention).

    Args:
        azimuth_deg: rotation about the world z axis (degrees).
        elevation_deg: elevation (degrees; negative looks down, as in the Blender test poses).
        radius: distance to the origin.
    """
    trans = torch.eye(4, dtype=torch.float64)
    trans[2, 3] = radius
    phi, theta = math.radians(elevation_deg), math.radians(azimuth_deg)
    rot_phi = torch.tensor([[1, 0, 0, 0], [0, math.cos(phi), -math.sin(phi), 0],
                            [0, math.sin(phi), math.cos(phi), 0], [0, 0, 0, 1]], dtype=torch.float64)
    rot_theta = torch.tensor([[math.cos(theta), 0, -math.sin(theta), 0], [0, 1, 0, 0],
                              [math.sin(theta), 0, math.cos(theta), 0], [0, 0, 0, 1]], dtype=torch.float64)
    flip = torch.tensor([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    return (flip @ rot_theta @ rot_phi @ trans).float()


def camera_rays(c2w: torch.Tensor, height: int, width: int, focal: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through pixel centres of a pinhole camera (DVGO ``get_rays``, mode ``center``).

    Args:
        c2w: camera-to-world ``[4, 4]`` (or ``[3, 4]``).
        height: H, pixels.
        width: W, pixels.
        focal: focal length in pixels.

    Returns:
        ``(rays_o, rays_d)``, each ``[H, W, 3]``; ``rays_d`` has camera-space z = -1 (not unit).
    """
    j, i = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    dirs = torch.stack([(i + 0.5 - width * 0.5) / focal, -(j + 0.5 - height * 0.5) / focal,
                        -torch.ones_like(i)], -1)
    rays_d = (dirs.unsqueeze(-2) * c2w[:3, :3]).sum(-1)
    rays_o = c2w[:3, 3].expand(rays_d.shape)
    return rays_o.contiguous(), rays_d
