#!/usr/bin/env python3
"""Launch a stage: ``python jobs/submit.py stage=<name> [cluster=local|slurm|debug] [key=value ...]``.

The first call on a fresh machine installs what the project needs (see jobs/_bootstrap.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap

_bootstrap.ensure("run")

from vrl.launch.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
