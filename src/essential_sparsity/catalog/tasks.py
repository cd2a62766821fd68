"""What kind of task a name is, decided here once: the stages, the settings and the rules ask the
task what it is rather than which list it is on.

The kind says what differs between tasks: how its examples are split and stored (text as JSON
lines, images as uint8 tensors), whether its runs read token ids encoded once per model, which
head the model gets and which metric its runs report. Every task's entry says its kind: a
built-in's in workflow/catalog.yaml, a task of params.yaml's catalog in its own (`kind`: text, qa
or image; text when it says none), so whoever asks about a catalog task hands its entry too
(`task_of`)."""

from __future__ import annotations

from dataclasses import dataclass

from .builtin import TASKS, tasks_of

TEXT = "text classification"
QA = "extractive question answering"
IMAGE = "image classification"
ARITHMETIC = "arithmetic word problems"
# an entry's `kind` -> the kind it names
ENTRY_KINDS = {"text": TEXT, "qa": QA, "image": IMAGE, "arithmetic": ARITHMETIC}

# The built-in tasks of the image and arithmetic kinds (`data.images` and `data.arithmetic` read
# them), by name.
IMAGE_TASKS = tuple(tasks_of("image"))
GENERATED_ARITHMETIC_TASKS = tuple(tasks_of("arithmetic", "generated"))
ARITHMETIC_TASKS = tuple(tasks_of("arithmetic"))


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
    """The task a name in params.yaml stands for, with the kind its entry says: a catalog
    task's `entry`, else the built-in's (text classification for a name that is neither, which
    the params check has refused before any job asks)."""
    return Task(name, ENTRY_KINDS[(entry or TASKS.get(name, {})).get("kind", "text")])


def task_of(params: dict, name: str) -> Task:
    """The task `name` stands for in this params.yaml: its catalog entry's, if it has one."""
    return task(name, params["catalog"]["tasks"].get(name))
