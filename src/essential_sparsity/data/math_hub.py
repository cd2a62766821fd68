"""MAWPS, ASDiv-A and SVAMP (the SMC-Bench arithmetic reasoning tasks of Figure 4) for the paper
profile, read from the Hugging Face cache.

Source: the Calc-X collection of MU-NLPC (arXiv 2305.15017): `MU-NLPC/Calc-mawps`,
`MU-NLPC/Calc-asdiv_a` and `MU-NLPC/Calc-svamp`, one family with the same core columns for all
three: `question` (the whole problem; Calc-X already joined SVAMP's Body and Question),
`chain` (the solution as calculator markup), `result` and `result_float` (the answer). The files
read are the hub's own parquet conversion, revision `refs/convert/parquet`, at the fixed paths
`default/<split>/0000.parquet`; the files on `main` carry content hashes in their names
(`data/test-00000-of-00001-d118ad90f5719063.parquet`) that change with every upload. The `default`
config is used: its MAWPS train split drops the original train problems that are near-duplicates
of any Calc-X test or validation problem (1,089 of 3,636 remain).

The equation is taken from the column that holds it most directly:
- mawps: `expression`, the solved form of MAWPS's equation (`((45.0-35.0)/5.0)`: the `x=` is gone
  and the few equations not solved for x were solved by hand); `equation` keeps the raw `x=...`.
- svamp: `equation`, SVAMP's own (`( 60.0 * ( 55.0 / 15.0 ) )`).
- asdiv-a: Calc-asdiv_a has no equation column, so the equation is rebuilt from `chain`, whose
  steps hold the values of earlier steps (`<gadget id="calculator">4 + 23</gadget>
  <output>27</output> ... 27 / 9`); its numbers are digits (`3_300` for the text's "3,300" or
  "three thousand three hundred"), not the text's words. Steps with floor() or ceiling()
  (ASDiv-A's remainder problems) are outside the grammar, so those problems are dropped.

Splits: MAWPS's train and validation become "train" (the pipeline makes its own validation split),
its test stays "test". ASDiv-A (1,218 problems) and SVAMP (1,000) are published as test sets
only, so every row is "test"; as in SMC-Bench (after Patel et al., 2021) the pipeline decides
what to train on (cross-validation folds over ASDiv-A; MAWPS and ASDiv-A for SVAMP).

Caveat: `refs/convert/parquet` is a branch the hub's converter rewrites; the rows are those of
the `default` config at the time the cache was filled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING

from ..catalog.builtin import tasks_of
from ..catalog.sources import SourceError, hub_dataset_file

if TYPE_CHECKING:  # pandas is imported where data is read, as in sources.py
    import pandas as pd

# task -> its entry in workflow/catalog.yaml: hub repo, revision, parquet files per split (in the
# order read), and the columns of the problem text, the equation (or calculator chain) and the
# answer.
MATH_HUB_TASKS = tasks_of("arithmetic", "hub")

_TOKEN = re.compile(r"\s*(\d[\d_]*(?:\.\d*)?|\.\d+|\S)")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_OPERATORS = ("+", "-", "*", "/")
_UNKNOWN_X = re.compile(r"^\s*x\s*=|=\s*x\s*$", re.IGNORECASE)
_STEP = re.compile(r'<gadget id="calculator">(.*?)</gadget>', re.DOTALL)


def _tokens(text: str) -> list[str]:
    """Numbers (thousands separators `_` dropped, a sign kept with the number it negates),
    operators and parentheses; any other character is a token of its own, which the parser
    refuses."""
    tokens: list[str] = []
    for token in (match.group(1).replace("_", "") for match in _TOKEN.finditer(text)):
        if tokens and tokens[-1] == "-" and _NUMBER.fullmatch(token) and (
                len(tokens) == 1 or tokens[-2] in (*_OPERATORS, "(")):
            tokens[-1] = "-" + token
        else:
            tokens.append(token)
    return tokens


class _Parser:
    """Exact value of expr := term ((+|-) term)*, term := factor ((*|/) factor)*,
    factor := number | ( expr ); ValueError (or ZeroDivisionError) outside that grammar."""

    def __init__(self, tokens: list[str]):
        self.tokens, self.pos = tokens, 0

    def value(self) -> Fraction:
        result = self._expr()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos]!r}")
        return result

    def _peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def _take(self) -> str:
        token = self._peek()
        self.pos += 1
        return token

    def _expr(self) -> Fraction:
        result = self._term()
        while self._peek() in ("+", "-"):
            result = result + self._term() if self._take() == "+" else result - self._term()
        return result

    def _term(self) -> Fraction:
        result = self._factor()
        while self._peek() in ("*", "/"):
            result = result * self._factor() if self._take() == "*" else result / self._factor()
        return result

    def _factor(self) -> Fraction:
        token = self._take()
        if token == "(":
            result = self._expr()
            if self._take() != ")":
                raise ValueError("unbalanced parenthesis")
            return result
        if not _NUMBER.fullmatch(token):
            raise ValueError(f"not a number: {token!r}")
        return Fraction(token)


def _evaluate(tokens: list[str]) -> Fraction | None:
    try:
        return _Parser(tokens).value()
    except (ValueError, ZeroDivisionError):
        return None


def _operands(tokens: list[str]) -> tuple[list[list[str]], list[str]]:
    """A calculator step split at its top-level operators: `(5/2) * 2` -> [[(,5,/,2,)], [2]]."""
    operands: list[list[str]] = [[]]
    operators: list[str] = []
    depth = 0
    for token in tokens:
        if depth == 0 and token in _OPERATORS and operands[-1]:
            operators.append(token)
            operands.append([])
            continue
        depth += (token == "(") - (token == ")")
        operands[-1].append(token)
    return operands, operators


def _same(shown: Fraction | None, value: Fraction) -> bool:
    """Whether a number a chain shows is `value`: the calculator rounds floats to 6 places."""
    return shown is not None and math.isclose(shown, value, rel_tol=1e-9, abs_tol=1e-6)


def _from_chain(chain: str) -> str | None:
    """The expression a Calc-X calculator chain computes. Calc-X writes one step per operation of
    the expression tree, children first, each showing its operands' values; so, right to left,
    an operand equal to the latest unconsumed result is taken to be that result. A literal
    that merely equals it may take its place, which keeps every value (the chain cannot tell
    them apart); a chain that does not fold into one expression gives None."""
    pending: list[tuple[str, Fraction]] = []
    for step in _STEP.findall(chain):
        operands, operators = _operands(_tokens(step))
        for operand in reversed(operands):
            if pending and _same(_evaluate(operand), pending[-1][1]):
                operand[:] = ["(", *_tokens(pending.pop()[0]), ")"]
        parts = [*operands[0]]
        for operator, operand in zip(operators, operands[1:], strict=True):
            parts += [operator, *operand]
        value = _evaluate(parts)
        if value is None:
            return None
        pending.append((" ".join(parts), value))
    return pending[0][0] if len(pending) == 1 else None


def clean_equation(source: str) -> str | None:
    """`source` as an infix expression over number literals, + - * / and parentheses, tokens
    separated by spaces (`x=((45.0-35.0)/5.0)` -> `( ( 45.0 - 35.0 ) / 5.0 )`): a leading `x =`
    or trailing `= x` is stripped and a calculator chain is rebuilt into the expression it
    computes. None if what is left is outside that grammar (a function, an unknown, ...)."""
    text = _from_chain(source) if "<gadget" in source else _UNKNOWN_X.sub("", source)
    if text is None:
        return None
    tokens = _tokens(text)
    return " ".join(tokens) if _evaluate(tokens) is not None else None


def evaluate(equation: str) -> float:
    """The value of an equation in the grammar above (ValueError outside it), computed exactly
    and then rounded to a float."""
    return float(_Parser(_tokens(equation)).value())


def _gives(equation: str | None, answer: float) -> bool:
    if equation is None or not math.isfinite(answer):
        return False
    return math.isclose(evaluate(equation), answer, rel_tol=1e-4, abs_tol=1e-9)


def _read(task: str) -> pd.DataFrame:
    """Every row of the task's files, in file order, with its split and the raw columns."""
    import pandas as pd

    entry = MATH_HUB_TASKS[task]
    columns = {entry["text"]: "text", entry["equation"]: "source", entry["answer"]: "answer"}
    frames = []
    for split, files in entry["files"].items():
        for filename in files:
            path = hub_dataset_file(task, entry["hub"], filename, entry["revision"])
            frame = pd.read_parquet(path, columns=list(columns))
            frames.append(frame.rename(columns=columns).assign(split=split))
    return pd.concat(frames, ignore_index=True)


def load_math_problems(task: str, log: Callable[[str], None] = print) -> pd.DataFrame:
    """One row per problem: `text`, `equation` (see `clean_equation`), `answer` (float) and
    `split` ("train" or "test"). Problems whose equation falls outside the grammar or does not
    give the answer are dropped, and their number logged, so every equation a model is trained
    or scored on evaluates (Python's eval) to its answer."""
    if task not in MATH_HUB_TASKS:
        raise SourceError(f"math task {task!r} is unknown (known: {', '.join(MATH_HUB_TASKS)})")
    rows = _read(task)
    rows["answer"] = rows["answer"].astype(float)
    equations = [clean_equation(str(source)) for source in rows.pop("source")]
    keep = [_gives(eq, answer) for eq, answer in zip(equations, rows["answer"], strict=True)]
    rows["equation"] = equations
    log(f"math task {task}: dropped {len(rows) - sum(keep)} of {len(rows)} problems whose "
        f"equation is not + - * / over numbers or does not give the answer")
    return rows[keep].reset_index(drop=True)[["text", "equation", "answer", "split"]]
