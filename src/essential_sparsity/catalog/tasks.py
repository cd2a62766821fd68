"""What kind of task a name is, decided here once: the stages, the settings and the rules ask the
task what it is rather than which list it is on.

The kind says what differs between tasks: how its examples are split and stored (text as JSON
lines, images as uint8 tensors), whether its runs read token ids encoded once per model, which
head the model gets and which metric its runs report. A built-in task's kind follows from its
name; a task of params.yaml's catalog says its own (`kind`: text, qa or image; text when it says
none), so whoever asks about a catalog task hands its entry too (`task_of`)."""

from __future__ import annotations

from dataclasses import dataclass

from .sources import QA_TASKS

TEXT = "text classification"
QA = "extractive question answering"
IMAGE = "image classification"
ARITHMETIC = "arithmetic word problems"
# a catalog entry's `kind` -> the kind it names
ENTRY_KINDS = {"text": TEXT, "qa": QA, "image": IMAGE}

# The built-in tasks of the image and arithmetic kinds (`data.images` and `data.arithmetic` read
# them); every other task is text classification or, named in `sources.QA_TASKS`, extractive QA.
IMAGE_TASKS = ("fashion-mnist-04", "fashion-mnist-59", "digits", "cifar10", "cifar100",
               "tiny-imagenet")
GENERATED_ARITHMETIC_TASKS = ("arith-one-step", "arith-two-step", "arith-distractor")
ARITHMETIC_TASKS = (*GENERATED_ARITHMETIC_TASKS, "mawps", "asdiv-a", "svamp")


@dataclass(frozen=True)
class Task:
    name: str
    kind: str

    @property
    def metric(self) -> str:
        """What its runs report: SQuAD's F1 (Table 1; exact match is kept beside it), else
        test accuracy."""
        return "f1" if self.kind == QA else "accuracy"

    @property
    def encoded(self) -> bool:
        """Whether its runs read token ids (`encode_task`) rather than the stored split."""
        return self.kind != IMAGE


def task(name: str, entry: dict | None = None) -> Task:
    """The task a name in params.yaml stands for, with its kind: a catalog task's from its
    `entry`, a built-in's from its name."""
    if entry is not None:
        return Task(name, ENTRY_KINDS[entry.get("kind", "text")])
    if name in IMAGE_TASKS:
        return Task(name, IMAGE)
    if name in ARITHMETIC_TASKS:
        return Task(name, ARITHMETIC)
    if name in QA_TASKS:
        return Task(name, QA)
    return Task(name, TEXT)


def task_of(params: dict, name: str) -> Task:
    """The task `name` stands for in this params.yaml: its catalog entry's, if it has one."""
    return task(name, params["catalog"]["tasks"].get(name))
