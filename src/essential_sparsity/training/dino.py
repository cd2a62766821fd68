"""Self-distillation with no labels (DINO, Caron et al. 2021), the self-supervised objective the
paper's DINO-base was pre-trained with, at the scale of this machine.

A student sees every crop of an image (two global views and several small local ones); a teacher
with the same architecture, an exponential moving average of the student, sees the global views
only. The student is trained to predict the teacher's output distribution over `out_dim`
prototypes from every other view. Two things keep the teacher from collapsing to one constant
output: centering (a running mean of its outputs is subtracted, which stops one prototype from
dominating) and sharpening (a low teacher temperature, which stops the uniform distribution).
Augmentation is batched and draws from a seeded generator, so a step is a pure function of the
seed and the step, as in the masked-LM pre-training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class DinoHead(torch.nn.Module):
    """DINO's projection: a 3-layer MLP to a bottleneck, L2-normalised, then a linear layer with
    unit-norm rows onto the prototypes (DINO's weight-normalised last layer, its gain fixed).

    `batch_norm` is DINO's `use_bn_in_head`. A small ViT's [CLS] features start almost identical
    across images, so once centred the teacher's targets are uniform and training never leaves
    the uniform collapse; normalising the hidden layers over the batch keeps the images apart.
    It uses batch statistics only (no running averages): the teacher, an average of the
    student's parameters, has no buffers of its own to average."""

    def __init__(self, in_dim: int, hidden_dim: int, bottleneck_dim: int, out_dim: int,
                 batch_norm: bool):
        super().__init__()

        def hidden(width_in: int) -> list[torch.nn.Module]:
            norm = ([torch.nn.BatchNorm1d(hidden_dim, track_running_stats=False)]
                    if batch_norm else [])
            return [torch.nn.Linear(width_in, hidden_dim), *norm, torch.nn.GELU()]

        self.mlp = torch.nn.Sequential(*hidden(in_dim), *hidden(hidden_dim),
                                       torch.nn.Linear(hidden_dim, bottleneck_dim))
        self.prototypes = torch.nn.Linear(bottleneck_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        return F.linear(x, F.normalize(self.prototypes.weight, dim=-1))


def random_resized_crops(images: torch.Tensor, size: int, scale: tuple[float, float],
                         jitter: float, generator: torch.Generator) -> torch.Tensor:
    """One random crop per image (area a fraction `scale` of the image, aspect 3/4..4/3), resized
    to size x size, flipped left-right half the time, brightness and contrast scaled by up to
    `jitter`. Bilinear sampling of all crops at once through one affine grid."""
    n = len(images)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    area = uniform(*scale)
    aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = uniform(-1.0, 1.0) * (1 - width)
    centre_y = uniform(-1.0, 1.0) * (1 - height)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                          align_corners=False)
    contrast = uniform(1 - jitter, 1 + jitter).view(-1, 1, 1, 1)
    brightness = uniform(-jitter, jitter).view(-1, 1, 1, 1)
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    return (crops - mean) * contrast + mean + brightness


def multi_crop(images: torch.Tensor, crops: dict, generator: torch.Generator) -> list[torch.Tensor]:
    """Two global views at the images' size, then `local_crops` small views."""
    full = images.shape[-1]
    views = [random_resized_crops(images, full, crops["global_scale"], crops["jitter"], generator)
             for _ in range(2)]
    views += [random_resized_crops(images, crops["local_size"], crops["local_scale"],
                                   crops["jitter"], generator)
              for _ in range(crops["local_crops"])]
    return views


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temperature: float, teacher_temperature: float) -> torch.Tensor:
    """Cross-entropy from each centred, sharpened teacher view to every student view of another
    crop, averaged over the pairs."""
    targets = [F.softmax((t - center) / teacher_temperature, dim=-1).detach() for t in teacher]
    total, pairs = 0.0, 0
    for i, target in enumerate(targets):
        for j, output in enumerate(student):
            if i == j:  # the same global view
                continue
            log_probs = F.log_softmax(output / student_temperature, dim=-1)
            total = total + (-(target * log_probs).sum(-1)).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def update_center(center: torch.Tensor, teacher: list[torch.Tensor], momentum: float) -> None:
    center.mul_(momentum).add_(torch.cat(teacher).mean(0), alpha=1 - momentum)


def teacher_momentum(step: int, total: int, start: float) -> float:
    """DINO's schedule: from `start` to 1 along a half cosine over the run."""
    return 1 - (1 - start) * (math.cos(math.pi * step / total) + 1) / 2


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


def teacher_entropy(teacher: list[torch.Tensor], center: torch.Tensor,
                    teacher_temperature: float) -> tuple[float, float]:
    """Mean entropy of the teacher's per-image distributions, and entropy of their batch mean.
    Collapse to one prototype drives both to 0; collapse to uniform drives the first to
    log(out_dim). A working run keeps the first low and the second high."""
    probs = F.softmax((torch.cat(teacher) - center) / teacher_temperature, dim=-1)
    per_image = -(probs * torch.log(probs + 1e-12)).sum(-1).mean()
    mean = probs.mean(0)
    return float(per_image), float(-(mean * torch.log(mean + 1e-12)).sum())
