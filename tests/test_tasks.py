"""A task's kind is decided in one place (`catalog.tasks`), and what differs between kinds follows
from it: the metric its runs report and whether they read token ids."""

from __future__ import annotations

import pytest

from essential_sparsity.catalog import tasks


@pytest.mark.parametrize(("name", "kind", "metric", "encoded"), [
    ("bbc-news", tasks.TEXT, "accuracy", True),
    ("mnli", tasks.TEXT, "accuracy", True),
    ("squad", tasks.QA, "f1", True),
    ("fashion-mnist-59", tasks.IMAGE, "accuracy", False),
    ("cifar10", tasks.IMAGE, "accuracy", False),
    ("arith-two-step", tasks.ARITHMETIC, "accuracy", True),
    ("svamp", tasks.ARITHMETIC, "accuracy", True),
    ("my-reviews", tasks.TEXT, "accuracy", True),  # a catalog entry: text classification
])
def test_each_task_has_one_kind_and_what_follows_from_it(name, kind, metric, encoded):
    task = tasks.task(name)
    assert (task.kind, task.metric, task.encoded) == (kind, metric, encoded)
