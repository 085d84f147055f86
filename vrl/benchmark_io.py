"""What every benchmark script shares: ``--json PATH`` on the command line and the JSON it writes.

Benchmarks take ``key=value`` overrides like every stage, plus ``--json PATH`` (the issues' contract), and
write their numbers atomically so a reader never sees half a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def json_flag_argv(argv: Sequence[str]) -> list[str]:
    """``--json PATH`` / ``--json=PATH`` as ``json=PATH``; everything else is passed through."""
    out, args = [], list(argv)
    while args:
        a = args.pop(0)
        if a == "--json" and args:
            out.append(f"json={args.pop(0)}")
        elif a.startswith("--json="):
            out.append(f"json={a.split('=', 1)[1]}")
        else:
            out.append(a)
    return out


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """``doc`` as indented JSON at ``path`` (parents created), written to a temp name then renamed."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
