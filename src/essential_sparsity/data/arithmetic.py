"""Arithmetic word problems (Figure 4) as classification over equation templates.

The paper fine-tunes bert-base on MAWPS, ASDiv-A and SVAMP through SMC-Bench, whose solver decodes
the equation as an expression tree. Here the encoder classifies a problem into the template of its
equation instead: the equation with every number replaced by the position of that number in the
text (`n0 - n1`; `n2 - n0` when the first number asked about comes last). Template classification
is the classic baseline of math-word-problem solving; it keeps the prune and finetune stages
unchanged (one more text task each), and its accuracy is the share of problems solved with the
right equation, a lower bound on the answer accuracy SMC-Bench reports.

No math-word-problem data installs offline, so the default profile generates stand-ins, labelled
as such on Figure 4 and in the README, that mirror what separates the three datasets:
- `arith-one-step` (as MAWPS): one operation, several phrasings of each;
- `arith-two-step` (as ASDiv-A, more varied): one- and two-operation problems mixed;
- `arith-distractor` (as SVAMP, built from ASDiv-A by variations): the one-step problems with
  SVAMP's two commonest variations, an irrelevant sentence carrying a number and the question
  moved before the story.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..catalog.builtin import tasks_of
from ..catalog.sources import TaskData
from ..catalog.tasks import GENERATED_ARITHMETIC_TASKS
from . import math_hub

if TYPE_CHECKING:  # pandas is imported where frames are built: the Snakefile imports the names
    import pandas as pd

# The paper's dataset each task is, or (generated) stands in for: Figure 4's panel titles.
DATASETS = {task: entry["dataset"] for task, entry in tasks_of("arithmetic").items()}
# A number in a problem's text, thousands separators allowed ("3,300").
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")

NAMES = ["Ada", "Ben", "Carla", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kofi",
         "Lena", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
         "Wes", "Xia", "Yusuf", "Zoe"]
THINGS = ["apples", "books", "marbles", "stickers", "pencils", "cookies", "shells", "stamps",
          "cards", "balloons", "oranges", "crayons", "toys", "flowers", "coins", "eggs", "cups",
          "beads", "candles", "ribbons"]

# One-step problems, keyed by template: (a, b) are the numbers in the order the text gives them.
ONE_STEP = {
    "n0 + n1": [
        "{A} has {a} {x}. {B} gives {A} {b} more {x}. How many {x} does {A} have now?",
        "There are {a} {x} in a box. {A} puts {b} more {x} into the box. How many {x} are in "
        "the box now?",
        "{A} collected {a} {x} on Monday and {b} {x} on Tuesday. How many {x} did {A} collect "
        "in all?",
    ],
    "n0 - n1": [
        "{A} had {a} {x}. {A} gave {b} {x} to {B}. How many {x} does {A} have left?",
        "There were {a} {x} on the shelf. {B} took {b} of them away. How many {x} are on the "
        "shelf now?",
        "{A} has {a} {x} and {b} of them are broken. How many {x} are not broken?",
    ],
    "n1 - n0": [
        "{A} has {a} {x}. {B} has {b} {x}. How many more {x} does {B} have than {A}?",
        "{A} wants {b} {x} and already has {a}. How many more {x} does {A} need?",
        "{A} counted {a} {x} and {B} counted {b}. How many fewer {x} did {A} count than {B}?",
    ],
    "n0 * n1": [
        "{A} has {a} bags. Each bag holds {b} {x}. How many {x} does {A} have in all?",
        "{A} buys {a} packs of {x} with {b} {x} in every pack. How many {x} does {A} buy?",
        "There are {a} rows of {x} with {b} {x} in each row. How many {x} are there?",
    ],
    "n0 / n1": [
        "{A} shares {a} {x} equally among {b} friends. How many {x} does each friend get?",
        "{a} {x} are packed into bags of {b}. How many bags are filled?",
        "{A} spent {a} dollars on {b} {x} of the same price. How many dollars did each cost?",
    ],
}
TWO_STEP = {
    "n0 + n1 - n2": [
        "{A} had {a} {x}. {A} bought {b} more and then gave {c} to {B}. How many {x} does {A} "
        "have now?",
    ],
    "n0 + n1 + n2": [
        "{A} collected {a} {x} on Monday, {b} on Tuesday and {c} on Wednesday. How many {x} did "
        "{A} collect in all?",
    ],
    "n0 * n1 + n2": [
        "{A} has {a} bags with {b} {x} in each bag and {c} loose {x}. How many {x} does {A} "
        "have in all?",
    ],
    "n0 - n1 - n2": [
        "There were {a} {x}. {A} took {b} of them and {B} took {c}. How many {x} are left?",
    ],
    "( n0 + n1 ) / n2": [
        "{A} had {a} {x} and found {b} more. {A} shared them equally among {c} friends. How "
        "many {x} did each friend get?",
    ],
}
DISTRACTORS = ["{B} is {d} years old.", "The shop opened {d} years ago.",
               "{B} lives {d} miles away.", "{B} also owns {d} pets."]
def available_sources() -> list[dict]:
    """One row per arithmetic task, as `sources.available_sources`: the generated stand-ins
    need nothing installed, the hub tasks the paper profile's network or cache."""
    rows = [{"kind": "arithmetic", "name": task, "source": f"generated, as {DATASETS[task]}",
             "installed": True} for task in GENERATED_ARITHMETIC_TASKS]
    rows += [{"kind": "arithmetic", "name": task, "source": f"hub {entry['hub']}",
              "installed": True} for task, entry in math_hub.MATH_HUB_TASKS.items()]
    return rows


def template(text: str, equation: str) -> str | None:
    """The equation with each number replaced by `n<i>`, i its first position among the text's
    numbers; None when the equation uses a number the text does not state (a constant such as
    100 in a percentage), which a template over the text's numbers cannot express."""
    numbers = _values(text)
    out = []
    for token in equation.split():
        if token not in ("+", "-", "*", "/", "(", ")"):
            if float(token) not in numbers:
                return None
            token = f"n{numbers.index(float(token))}"
        out.append(token)
    return " ".join(out)


def _values(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in NUMBER.findall(text)]


def _numbers(key: str, rng: np.random.Generator) -> tuple[int, ...]:
    """Operands that keep every answer a positive whole number."""
    def small() -> int:
        return int(rng.integers(2, 10))

    def big() -> int:
        return int(rng.integers(10, 60))

    if key == "n0 - n1":
        b = big()
        return b + big(), b
    if key == "n1 - n0":
        a = big()
        return a, a + big()
    if key == "n0 / n1":
        b = small()
        return b * small(), b
    if key == "n0 * n1":
        return small(), small()
    if key == "n0 - n1 - n2":
        b, c = big(), big()
        return b + c + big(), b, c
    if key == "n0 + n1 - n2":
        a, b = big(), big()
        return a, b, int(rng.integers(1, a + b))
    if key == "n0 * n1 + n2":
        return small(), small(), big()
    if key == "( n0 + n1 ) / n2":
        c = small()
        a = c * small()
        return a, c * small(), c
    return big(), big(), big()  # sums: any operands (a one-step sum uses the first two)


def _problem(key: str, phrasings: list[str], rng: np.random.Generator) -> dict:
    values = _numbers(key, rng)
    while len(set(values)) < len(values):  # equal operands would make the template ambiguous
        values = _numbers(key, rng)
    names = rng.choice(NAMES, size=2, replace=False)
    fields = dict(zip("abc", values, strict=False), A=names[0], B=names[1],
                  x=THINGS[int(rng.integers(len(THINGS)))])
    text = phrasings[int(rng.integers(len(phrasings)))].format(**fields)
    equation = " ".join(str(values[int(t[1])]) if t.startswith("n") else t for t in key.split())
    return {"text": text, "equation": equation, "answer": math_hub.evaluate(equation)}


def _vary(problem: dict, rng: np.random.Generator) -> dict:
    """SVAMP's variations: an irrelevant sentence with a number joins the story at a random
    place, and half the time the question moves before the story."""
    sentences = re.split(r"(?<=[.?])\s+", problem["text"])
    story, question = sentences[:-1], sentences[-1]
    operands = set(_values(problem["text"]))
    irrelevant = next(d for d in rng.integers(2, 99, size=64) if float(d) not in operands)
    filler = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))].format(B=rng.choice(NAMES),
                                                                     d=int(irrelevant))
    story.insert(int(rng.integers(len(story) + 1)), filler)
    parts = [question, *story] if rng.random() < 0.5 else [*story, question]
    return {**problem, "text": " ".join(parts)}


def generate_problems(task: str, count: int, seed: int) -> pd.DataFrame:
    """`count` problems of one generated task: text, equation, answer."""
    if task not in GENERATED_ARITHMETIC_TASKS:
        raise ValueError(f"generated arithmetic task {task!r} is unknown "
                         f"(known: {', '.join(GENERATED_ARITHMETIC_TASKS)})")
    import pandas as pd

    rng = np.random.default_rng([seed, GENERATED_ARITHMETIC_TASKS.index(task)])
    families = {**ONE_STEP, **TWO_STEP} if task == "arith-two-step" else ONE_STEP
    keys = list(families)
    rows = []
    for _ in range(count):
        key = keys[int(rng.integers(len(keys)))]
        problem = _problem(key, families[key], rng)
        rows.append(_vary(problem, rng) if task == "arith-distractor" else problem)
    return pd.DataFrame(rows)


def as_classification(problems: pd.DataFrame, test: pd.DataFrame | None = None,
                      log: Callable[[str], None] = print) -> TaskData:
    """Text-task examples labelled by equation template, the label names being every template of
    `problems` and `test` (the official test set, if any) in sorted order. Problems a template
    cannot express are dropped and counted."""
    import pandas as pd

    parts = [_templated(frame, log) for frame in (problems, test) if frame is not None]
    names = sorted(set().union(*(part["template"] for part in parts)))

    def examples(part: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"text": part["text"].to_numpy(), "text_pair": "",
                             "label": part["template"].map(names.index).to_numpy()})

    return TaskData(examples(parts[0]), names, examples(parts[1]) if len(parts) > 1 else None)


def _templated(problems: pd.DataFrame, log: Callable[[str], None]) -> pd.DataFrame:
    templates = [template(t, e) for t, e in zip(problems["text"], problems["equation"],
                                                strict=True)]
    kept = problems.assign(template=templates).dropna(subset=["template"])
    if len(kept) < len(problems):
        log(f"dropped {len(problems) - len(kept)} of {len(problems)} problems whose equation "
            f"uses a number the text does not state")
    return kept


def load_arithmetic_task(task: str, generated: dict,
                         log: Callable[[str], None] = print) -> TaskData:
    """One arithmetic task as template classification. `generated` (problems, seed) sizes the
    generated stand-ins. The hub tasks follow SMC-Bench's protocol (after Patel et al., 2021):
    MAWPS keeps its own test split; ASDiv-A, published as one set, is split by the pipeline's
    rule (SMC-Bench cross-validates over 5 folds: this is one split); SVAMP, variations of
    ASDiv-A's problems, is solved by a model trained on MAWPS and ASDiv-A."""
    if task in GENERATED_ARITHMETIC_TASKS:
        return as_classification(generate_problems(task, generated["problems"],
                                                   generated["seed"]), log=log)
    if task == "svamp":
        import pandas as pd

        train = pd.concat([math_hub.load_math_problems(t, log) for t in ("mawps", "asdiv-a")],
                          ignore_index=True)
        return as_classification(train, math_hub.load_math_problems(task, log), log)
    problems = math_hub.load_math_problems(task, log)
    train, test = problems[problems["split"] == "train"], problems[problems["split"] == "test"]
    return as_classification(train, test, log) if len(train) else as_classification(test, log=log)

