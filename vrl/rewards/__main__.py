"""``python -m vrl.rewards score INPUT.jsonl [OUTPUT.jsonl] [key=value ...]`` (see :mod:`vrl.rewards.cli`)."""

import sys

from vrl.rewards.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
