"""Entries of the catalog's other kinds, written by the tests: questions in SQuAD's layout as
JSON Lines, a folder of images per class, and plain text for a corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLOURS = ["red", "green", "blue", "amber"]


def questions(directory: Path, n: int = 240, shift: int = 0) -> Path:
    """Questions whose answer is a colour in the context; every other context has leading
    spaces, which the split strips (moving its answer's offset). `shift` moves every
    answer_start off its answer."""
    path = directory / "questions.jsonl"
    with path.open("w") as out:
        for i in range(n):
            colour = COLOURS[i % len(COLOURS)]
            context = f"{'  ' if i % 2 else ''}item {i} is {colour} and weighs {i + 3} grams."
            answer = {"text": [colour], "answer_start": [context.index(colour) + shift]}
            out.write(json.dumps({"q": f"what colour is item {i}?", "passage": context,
                                  "gold": answer}) + "\n")
    return path


def image_folder(directory: Path, n: int = 240, sizes: tuple = ((10, 12),)) -> Path:
    """A folder of PNGs per class: dark or bright noise, every image distinct."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = ("dark", "bright")[i % 2]
        (directory / label).mkdir(parents=True, exist_ok=True)
        size = sizes[i % len(sizes)]
        pixels = rng.integers(0, 100, (*size, 3)) + (150 if label == "bright" else 0)
        Image.fromarray(pixels.astype(np.uint8)).save(directory / label / f"{i:04d}.png")
    return directory


QA_ENTRY = {"kind": "qa", "text": "q", "text_pair": "passage", "answers": "gold"}


def notes(directory: Path, n: int = 60) -> Path:
    """A plain-text corpus of `n` paragraphs, each over two lines, every one distinct."""
    path = directory / "notes.txt"
    path.write_text("\n\n".join(
        f"Note {i} says the {COLOURS[i % len(COLOURS)]} lamp was lit at {i % 12 + 1} o'clock,\n"
        f"and the keeper wrote it down in the book of the tower, page {i}." for i in range(n)))
    return path
