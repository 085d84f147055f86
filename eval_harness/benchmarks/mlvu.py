"""MLVU multiple choice, test and dev splits: M-Avg = the mean of the per-task accuracies.

The records carry no task. The official test file (MLVU_Test ``test_question.json``, question ids ``AR_0``
… ``AC_59``) lists its 502 questions in nine task blocks, and EasyVideoR1's ``mlvu.json`` /
``mlvu-test.json`` keep that order with ``problem_id`` 1–502; the dev file ``mlvu-dev.json`` concatenates
the seven official dev task files (2,174 questions). So a record's task is its block in its split's
order, found from its ``problem_id``. The video file name cannot tell it: 58 topic-reasoning test
questions ask about movie, TV and cartoon clips named like plot-QA videos, and 19 dev topic-reasoning
questions use ``ego_*`` clips. Records whose file name does name one task (``needle``, ``surveil``,
``count``, ...) are checked against the order, so a file in another order is refused, naming the record.
A record may also carry its task (``task``, or the official ``question_type``), which wins.

The official scripts average the task accuracies (``Avg = Σ task acc / number of tasks``), on both splits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from eval_harness.aggregate import Row, Summary, macro
from eval_harness.benchmarks.base import Benchmark

#: the nine multiple-choice tasks of the test split, in the order of the official leaderboard
TASKS = (
    "topic_reasoning",
    "anomaly_reco",
    "needleQA",
    "ego",
    "plotQA",
    "sportsQA",
    "order",
    "count",
    "tutorialQA",
)
#: the dev split has seven of them (no sports or tutorial QA)
DEV_TASKS = tuple(t for t in TASKS if t not in ("sportsQA", "tutorialQA"))

#: (task, number of questions) in file order, test: the official question-id prefixes AR, SQA, AO, NQA,
#: PQA, TR, ER, TQA, AC
TEST_ORDER = (
    ("anomaly_reco", 39),
    ("sportsQA", 36),
    ("order", 70),
    ("needleQA", 60),
    ("plotQA", 50),
    ("topic_reasoning", 91),
    ("ego", 53),
    ("tutorialQA", 43),
    ("count", 60),
)
#: dev: the official task files in EasyVideoR1's order (its topic-reasoning block has 263 of the 264)
DEV_ORDER = (
    ("needleQA", 355),
    ("anomaly_reco", 200),
    ("count", 206),
    ("ego", 352),
    ("plotQA", 539),
    ("topic_reasoning", 263),
    ("order", 259),
)

#: official spellings of a task (``question_type`` values of the dev files, question-id prefixes)
_SPELLINGS = {
    "findNeedle": "needleQA",
    "needle": "needleQA",
    "AR": "anomaly_reco",
    "SQA": "sportsQA",
    "AO": "order",
    "NQA": "needleQA",
    "PQA": "plotQA",
    "TR": "topic_reasoning",
    "ER": "ego",
    "TQA": "tutorialQA",
    "AC": "count",
}
#: file-name stems that only one task uses (in either split): checked against the order
_NAMED_BY_FILE = {
    "surveil": "anomaly_reco",
    "needle": "needleQA",
    "order": "order",
    "count": "count",
    "sports": "sportsQA",
    "tutorial": "tutorialQA",
}
_STEM = re.compile(r"^(?:test_)?(.*?)[_-]?\d*$")


def _blocks(order: tuple[tuple[str, int], ...]) -> list[tuple[int, str]]:
    """(last problem_id of the block, task) pairs; problem ids start at 1."""
    out, end = [], 0
    for task, count in order:
        end += count
        out.append((end, task))
    return out


def _explicit(record: dict[str, Any], tasks: tuple[str, ...]) -> str | None:
    for name in ("task", "question_type"):
        value = record.get(name)
        value = _SPELLINGS.get(value, value)
        if value in tasks:
            return value
    return None


def _file_task(record: dict[str, Any]) -> str | None:
    name = str(record.get("path", "")).rsplit("/", 1)[-1].rsplit(".", 1)[0]
    match = _STEM.match(name)
    return _NAMED_BY_FILE.get(match.group(1) if match else name)


def _task_finder(order: tuple[tuple[str, int], ...], tasks: tuple[str, ...]) -> Callable[[dict], str | None]:
    blocks = _blocks(order)

    def task_of(record: dict[str, Any]) -> str | None:
        explicit = _explicit(record, tasks)
        if explicit is not None:
            return explicit
        pid = record.get("problem_id")
        if isinstance(pid, str) and pid.isdigit():
            pid = int(pid)
        if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1:
            return None
        return next((task for end, task in blocks if pid <= end), None)

    return task_of


task_in_test_split = _task_finder(TEST_ORDER, TASKS)
task_in_dev_split = _task_finder(DEV_ORDER, DEV_TASKS)


def _check(split: str, order: tuple[tuple[str, int], ...], tasks: tuple[str, ...], task_of) -> Callable:
    total = sum(n for _, n in order)

    def check(record: dict[str, Any]) -> str | None:
        task = task_of(record)
        if task is None:
            return (
                f"has problem_id={record.get('problem_id')!r}, outside the official {split} order (1-{total}); "
                f"add a 'task' field (one of: {', '.join(tasks)})"
            )
        named = _file_task(record)
        if _explicit(record, tasks) is None and named is not None and named != task:
            return (
                f"has video {record.get('path')!r} of task {named}, but problem_id {record.get('problem_id')} "
                f"is in the {task} block of the official {split} order: the file is not in that order; "
                "add a 'task' field to every record"
            )
        return None

    return check


def aggregate_test(rows: list[Row]) -> Summary:
    return macro(rows, task_in_test_split, TASKS)


def aggregate_dev(rows: list[Row]) -> Summary:
    return macro(rows, task_in_dev_split, DEV_TASKS)


BENCHMARKS = [
    Benchmark(
        name="mlvu",
        title="MLVU",
        category="long",
        annotation_file="mlvu.json",
        fallback_files=("mlvu-test.json",),
        problem_types=("multiple choice",),
        metric="M-Avg: mean of the 9 per-task accuracies (test split; task from the official test order)",
        aggregate=aggregate_test,
        checks=(_check("test", TEST_ORDER, TASKS, task_in_test_split),),
        aliases=("mlvu_test",),
        typical_duration_s=930.0,
    ),
    Benchmark(
        name="mlvu_dev",
        title="MLVU (dev)",
        category="long",
        annotation_file="mlvu-dev.json",
        problem_types=("multiple choice",),
        metric="M-Avg: mean of the 7 per-task accuracies (dev split; task from the official dev order)",
        aggregate=aggregate_dev,
        checks=(_check("dev", DEV_ORDER, DEV_TASKS, task_in_dev_split),),
        typical_duration_s=700.0,
    ),
]
