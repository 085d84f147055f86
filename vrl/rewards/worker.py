"""Entry point of a scoring worker process (see :mod:`vrl.rewards.workers`): JSON lines in and out.

Request: ``{"type", "answer", "sample", "config"}``. Reply: ``{"accuracy", "parsed", "extras"}``, or
``{"error": message}`` for a malformed ground truth (``ValueError``, re-raised by the parent), or
``{"crashed": reason}`` when the judge ran out of memory or recursion (scored as a wrong answer).
"""

from __future__ import annotations

import json
import resource
import sys

from vrl.rewards.config import RewardConfig
from vrl.rewards.registry import get_type, load_extra_modules


def _judge(request: dict) -> dict:
    config = RewardConfig(**request["config"])
    load_extra_modules(config.extra_modules)
    rtype = get_type(request["type"])
    # local import: scoring imports workers, which must not import scoring at module level
    from vrl.rewards.scoring import as_verdict, unit_interval

    verdict = as_verdict(rtype.fn(request["answer"], request["sample"], config))
    return {
        "accuracy": unit_interval(verdict.accuracy),
        "parsed": bool(verdict.parsed),
        "extras": {str(k): unit_interval(v) for k, v in verdict.extras.items()},
    }


def main(argv: list[str]) -> None:
    memory_mb = int(argv[0]) if argv else 4096
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import math_verify  # noqa: F401  (warm: the first math request should not pay the import)

    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            reply = _judge(request)
        except ValueError as e:
            reply = {"error": str(e)}
        except (MemoryError, RecursionError) as e:  # the untrusted answer exhausted the worker
            reply = {"crashed": type(e).__name__}
        out.write((json.dumps(reply) + "\n").encode())
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
