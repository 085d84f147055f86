"""``python -m eval_harness score|list`` (see :mod:`eval_harness.cli`)."""

import sys

from eval_harness.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
