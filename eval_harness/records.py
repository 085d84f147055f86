"""Annotation files → validated records with a unique key each.

Every record is checked when it is read, so a data error surfaces before hours of inference and names the
file and the record: required fields, a problem type the benchmark does not have, a ground truth the
reward cannot parse, a sub-category value outside the official ones. Options written as the text of a
list (VideoMathQA) are parsed.

A record's key is its ``problem_id`` as a string. Records sharing a ``problem_id`` (LiveSports-3K has a
few, VideoMathQA's binary variants share their question's) get ``<id>#<field value>`` when the benchmark
names a distinguishing field, else ``<id>#<n>`` (n-th in file order); the key identifies a prediction in
the prediction files, whatever the number of shards.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path
from typing import Any

from cache_builder.records import load_records
from eval_harness.benchmarks import Benchmark
from vrl.data.media import ROOT_KEY
from vrl.rewards import canonical_type, get_type, score

#: private keys the harness adds to each record
KEY = "_key"
BENCH = "_benchmark"
INDEX = "_index"
#: at most this many problems are listed in one error
MAX_LISTED = 5


def _parse_options(value: Any) -> list[str] | None:
    """Options as a list of strings; a string holding a JSON/Python list is parsed; None if invalid."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    if isinstance(value, (list, tuple)) and all(isinstance(o, (str, int, float)) for o in value):
        return [str(o) for o in value]
    return None


def _problems(record: Any, bench: Benchmark) -> list[str]:
    """What is wrong with one record (empty: nothing)."""
    if not isinstance(record, dict):
        return [f"is a {type(record).__name__}, not a JSON object"]
    out = []
    pid = record.get("problem_id")
    if pid is None or isinstance(pid, (bool, float, dict, list)):
        out.append(f"has problem_id={pid!r}; expected a string or an integer")
    for name in ("problem", "path"):
        if not isinstance(record.get(name), str):
            out.append(f"has {name}={record.get(name)!r}; expected a string")
    if "solution" not in record:
        out.append("lacks the field 'solution'")
    ptype = record.get("problem_type")
    try:
        canonical = canonical_type(ptype)
    except ValueError:
        out.append(f"has problem_type={ptype!r}, unknown to vrl.rewards")
        canonical = None
    if canonical is not None and canonical not in bench.problem_types:
        out.append(f"has problem_type={ptype!r}; {bench.title} records are: {', '.join(bench.problem_types)}")
    options = _parse_options(record.get("options"))
    if options is None:
        out.append(f"has options={record.get('options')!r}; expected a list of strings")
    else:
        record["options"] = options
    if out:
        return out
    out += bench.check_record(record)
    if not out and not get_type(canonical).isolated:
        try:  # the ground truth must parse: score an empty answer (isolated types are checked when scored)
            score(record, "")
        except ValueError as e:
            out.append(f"has a solution the reward cannot read: {e}")
    return out


def assign_keys(records: list[dict[str, Any]], key_field: str = "") -> None:
    """Set ``record[KEY]`` (see the module docstring); duplicates left over raise ``ValueError``."""
    counts = Counter(str(r["problem_id"]) for r in records)
    plain = Counter(str(r["problem_id"]) for r in records if not (key_field and r.get(key_field)))
    seen: Counter[str] = Counter()
    for r in records:
        pid = str(r["problem_id"])
        if counts[pid] == 1:
            r[KEY] = pid
        elif key_field and r.get(key_field) not in (None, ""):
            r[KEY] = f"{pid}#{r[key_field]}"
        elif plain[pid] == 1 and key_field:
            r[KEY] = pid
        else:
            r[KEY] = f"{pid}#{seen[pid]}"
            seen[pid] += 1
    dup = [k for k, n in Counter(r[KEY] for r in records).items() if n > 1]
    if dup:
        raise ValueError(
            f"records share the key(s) {dup[:MAX_LISTED]} (problem_id + {key_field or 'position'})"
        )


def load_benchmark(bench: Benchmark, path: str | Path, media_root: str | Path | None = None) -> list[dict]:
    """Validated records of ``bench`` from ``path``, keyed, tagged with the benchmark and media root."""
    path = Path(path)
    if not path.is_file():
        hint = (
            ""
            if bench.has_public_file
            else " (not in the public release: convert it, see eval_harness/FORMAT.md)"
        )
        raise ValueError(f"{bench.title}: annotation file not found: {path}{hint}")
    try:
        records = load_records(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{bench.title}: cannot read {path}: {e}") from None
    errors = []
    for i, record in enumerate(records):
        for msg in _problems(record, bench):
            pid = record.get("problem_id", "?") if isinstance(record, dict) else "?"
            errors.append(f"{path}: record {i} (problem_id {pid}) {msg}")
    if errors:
        more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise ValueError(
            f"{bench.title}: invalid annotation records:\n  " + "\n  ".join(errors[:MAX_LISTED]) + more
        )
    try:
        assign_keys(records, bench.key_field)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    root = str(media_root) if media_root is not None else str(path.parent)
    for i, record in enumerate(records):
        record[BENCH] = bench.name
        record[INDEX] = i
        record[ROOT_KEY] = root
    return records
