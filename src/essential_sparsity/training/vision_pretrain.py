"""One small ViT pre-trained twice, supervised and self-supervised, resumable to the bit.

Section 4 of the paper compares ViT-base (supervised on ImageNet-21k) with DINO-base (the same
architecture, self-supervised). Here both objectives train the same ViT configuration from the
same initial weights, on the same images, for the same steps, batch size, optimizer and seed; the
objective is the one difference:
- supervised: cross-entropy of a linear classifier on the [CLS] feature of one augmented view;
- dino: self-distillation between a student and a momentum teacher over multi-crop views
  (`dino`), the teacher's backbone being the checkpoint, as DINO releases it.
Both draw their views from the same crop family (global crops), so augmentation is not a
difference either. Everything random is a pure function of (seed, step), as in the masked-LM
pre-training, and drawn on the CPU (the views are cut there, then moved to the model's device), so
a run's views are the same on any device. The resume file holds the whole training state (every
module, the DINO centre, AdamW's moments), so a run killed after checkpoint k ends bit-identical to
one never interrupted.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.images import pixel_values
from ..records.io import atomic_dir, read_tensors, write_tensors
from . import dino
from .finetune import adamw, autocast, linear_factor
from .pretrain import (
    RESUME,
    batch_indices,
    derived_generator,
    derived_seed,
    drop_later_steps,
    load_optimizer,
    optimizer_tensors,
    resume_point,
    step_dir,
    train_loop,
)

# Pixel scaling of the models pre-trained here (as google/vit-*-in21k: x / 255 -> [-1, 1]).
MEAN, STD = 0.5, 0.5


def build_backbone(settings: dict, channels: int):
    """The ViT, initialised from the seed alone: both objectives start from these weights."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(num_channels=channels, **settings["model"])
    torch.manual_seed(settings["seed"])
    return ViTModel(config, add_pooling_layer=False)


def build_modules(objective: str, settings: dict, channels: int,
                  num_labels: int) -> dict[str, torch.nn.Module]:
    """What one objective trains. The teacher starts as a copy of the student, as in DINO."""
    backbone = build_backbone(settings, channels)
    width = backbone.config.hidden_size
    if objective == "supervised":
        return {"backbone": backbone, "head": torch.nn.Linear(width, num_labels)}
    head_sizes = settings["dino"]
    head = dino.DinoHead(width, head_sizes["hidden_dim"], head_sizes["bottleneck_dim"],
                         head_sizes["out_dim"], head_sizes["batch_norm"])
    return {"backbone": backbone, "head": head, "teacher": copy.deepcopy(backbone),
            "teacher_head": copy.deepcopy(head)}


def _cls(backbone, views: torch.Tensor) -> torch.Tensor:
    out = backbone(pixel_values=views.to(backbone.device), interpolate_pos_encoding=True)
    return out.last_hidden_state[:, 0]


def normalized(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    return pixel_values(images, size, channels, [MEAN] * channels, [STD] * channels)


def _dino_outputs(modules: dict, views: list[torch.Tensor]) -> tuple[list, list]:
    """Student outputs for every view (global and local views batched apart), teacher outputs
    for the two global views."""
    student = list(modules["head"](_cls(modules["backbone"], torch.cat(views[:2]))).chunk(2))
    if len(views) > 2:
        local = modules["head"](_cls(modules["backbone"], torch.cat(views[2:])))
        student += list(local.chunk(len(views) - 2))
    with torch.no_grad():
        teacher = modules["teacher_head"](_cls(modules["teacher"], torch.cat(views[:2])))
    return student, list(teacher.chunk(2))


def objective_loss(objective: str, modules: dict, images: torch.Tensor, labels: torch.Tensor,
                   center: torch.Tensor, settings: dict, generator: torch.Generator):
    """The loss of one batch, and the teacher's outputs (DINO) that move the centre."""
    x = normalized(images, settings["model"]["image_size"], images.shape[1])
    crops = settings["crops"]
    if objective == "supervised":
        view = dino.random_resized_crops(x, x.shape[-1], crops["global_scale"], crops["jitter"],
                                         generator)
        logits = modules["head"](_cls(modules["backbone"], view))
        return F.cross_entropy(logits, labels.to(logits.device)), None
    student, teacher = _dino_outputs(modules, dino.multi_crop(x, crops, generator))
    d = settings["dino"]
    loss = dino.dino_loss(student, teacher, center, d["student_temperature"],
                          d["teacher_temperature"])
    return loss, teacher


@torch.no_grad()
def initial_center(modules: dict, data: dict, settings: dict) -> torch.Tensor:
    """DINO starts its centre at zero, forgotten within ten steps of a run of 10^5. Over a few
    hundred steps that start would leave the first checkpoints' targets uncentred, so the
    held-out loss would have no baseline to fall from; the centre starts instead at the
    teacher's mean output on the first batch's global views."""
    index = batch_indices(0, len(data["labels"]), settings["batch_size"], settings["seed"])
    x = normalized(data["images"][index], settings["model"]["image_size"],
                   data["images"].shape[1])
    views = dino.multi_crop(x, settings["crops"], derived_generator(settings["seed"], "views", 0))
    return modules["teacher_head"](_cls(modules["teacher"], torch.cat(views[:2]))).mean(0)


def _train_step(objective: str, modules: dict, trained: torch.nn.Module,
                optimizer: torch.optim.Optimizer, center: torch.Tensor, data: dict,
                settings: dict, step: int) -> float:
    seed = settings["seed"]
    index = batch_indices(step, len(data["labels"]), settings["batch_size"], seed)
    factor = linear_factor(step, settings["steps"], settings["warmup_steps"])
    for group in optimizer.param_groups:
        group["lr"] = settings["learning_rate"] * factor
    torch.manual_seed(derived_seed(seed, "dropout", step))
    with autocast(trained, settings["precision"]):
        loss, teacher = objective_loss(objective, modules, data["images"][index],
                                       data["labels"][index], center, settings,
                                       derived_generator(seed, "views", step))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trained.parameters(), settings["clip_grad"])
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if objective == "dino":
        momentum = dino.teacher_momentum(step, settings["steps"],
                                         settings["dino"]["teacher_momentum"])
        dino.ema_update(modules["teacher"], modules["backbone"], momentum)
        dino.ema_update(modules["teacher_head"], modules["head"], momentum)
        dino.update_center(center, [t.float() for t in teacher],
                           settings["dino"]["center_momentum"])
    return loss.item()


@torch.no_grad()
def heldout_metrics(objective: str, modules: dict, center: torch.Tensor, heldout: dict,
                    settings: dict) -> dict:
    """Held-out loss under one fixed draw of views, comparable across steps; the supervised
    model's accuracy on whole images; the DINO teacher's entropies (the collapse check)."""
    for module in modules.values():
        module.eval()
    generator = derived_generator(settings["seed"], "heldout", 0)
    loss, teacher = objective_loss(objective, modules, heldout["images"], heldout["labels"],
                                   center, settings, generator)
    row = {"heldout_loss": float(loss)}
    if objective == "supervised":
        x = normalized(heldout["images"], settings["model"]["image_size"],
                       heldout["images"].shape[1])
        predicted = modules["head"](_cls(modules["backbone"], x)).argmax(-1).cpu()
        row["heldout_accuracy"] = 100.0 * float((predicted == heldout["labels"]).float().mean())
    else:
        entropy, batch_entropy = dino.teacher_entropy(teacher, center,
                                                      settings["dino"]["teacher_temperature"])
        row.update(teacher_entropy=entropy, teacher_batch_entropy=batch_entropy)
    for module in modules.values():
        module.train()
    return row


def _checkpoint(objective: str, modules: dict, trained, optimizer, center: torch.Tensor,
                work: Path, step: int, fingerprint: str, history: list[dict]) -> None:
    """The released backbone (DINO: the teacher's) as a loadable model directory with its pixel
    scaling, then the whole training state (written second: a resume file always points at a
    complete checkpoint)."""
    from transformers import ViTImageProcessor

    released = modules["teacher" if objective == "dino" else "backbone"]
    config = released.config
    with atomic_dir(step_dir(work, step)) as tmp:
        released.save_pretrained(str(tmp))
        ViTImageProcessor(size={"height": config.image_size, "width": config.image_size},
                          image_mean=[MEAN] * config.num_channels,
                          image_std=[STD] * config.num_channels).save_pretrained(str(tmp))
    state = {f"state/{k}": v.cpu() for k, v in _all_state(modules).items()}
    state["center"] = center.cpu()
    write_tensors(work / RESUME, {**state, **optimizer_tensors(trained, optimizer)},
                  metadata={"step": str(step), "fingerprint": fingerprint,
                            "history": json.dumps(history)})


def _all_state(modules: dict) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value for name, module in modules.items()
            for key, value in module.state_dict().items()}


def _restore(modules: dict, trained, optimizer, center: torch.Tensor, work: Path) -> None:
    tensors = read_tensors(work / RESUME)
    for name, module in modules.items():
        prefix = f"state/{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)})
    center.copy_(tensors["center"])
    load_optimizer(trained, optimizer, tensors)


def run(objective: str, data: dict, heldout: dict, num_labels: int, settings: dict,
        work: str | Path, fingerprint: str, desc: str = "pre-train",
        log: Callable[[str], None] = print, device: torch.device | str = "cpu") -> list[dict]:
    """Pre-train into `work` on `device`, checkpointing as it goes; resume there if a run with
    the same `fingerprint` (settings and data) was interrupted. `data` and `heldout` hold uint8
    `images` and `labels` on the CPU (DINO ignores the labels). Returns one history row per
    checkpoint."""
    work = Path(work)
    torch.use_deterministic_algorithms(True)
    modules = {name: module.to(device) for name, module in
               build_modules(objective, settings, data["images"].shape[1], num_labels).items()}
    student = {k: v for k, v in modules.items() if not k.startswith("teacher")}
    trained = torch.nn.ModuleDict(student)  # what AdamW updates
    optimizer = adamw(trained, settings["learning_rate"], settings["weight_decay"])
    center = torch.zeros(settings["dino"]["out_dim"], device=device)
    point = resume_point(work, fingerprint)
    if point is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        start = 0
        if objective == "dino":
            center.copy_(initial_center(modules, data, settings))
        history = [{"step": 0, "train_loss": None,
                    **heldout_metrics(objective, modules, center, heldout, settings)}]
        _checkpoint(objective, modules, trained, optimizer, center, work, 0, fingerprint, history)
    else:
        start, history = point
        log(f"resuming {work} from step {start}")
        _restore(modules, trained, optimizer, center, work)
        drop_later_steps(work, start)
    return train_loop(start, settings, history, desc,
                      lambda step: _train_step(objective, modules, trained, optimizer, center,
                                               data, settings, step),
                      lambda: heldout_metrics(objective, modules, center, heldout, settings),
                      lambda step, rows: _checkpoint(objective, modules, trained, optimizer,
                                                     center, work, step, fingerprint, rows))
