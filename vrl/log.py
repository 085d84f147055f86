"""The project logger: one ``vrl`` hierarchy, rank 0 only by default, one fixed line format.

Library modules call ``logger = get_logger(__name__)`` and never print. Entry points call
:func:`setup_logging` once; on ranks other than 0 only warnings and errors pass.
"""

from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s %(levelname).1s [%(name)s] %(message)s"
_configured = False


def get_logger(name: str) -> logging.Logger:
    """Logger under the project hierarchy (``cache_builder.x`` → ``vrl.cache_builder.x``)."""
    if not name.startswith("vrl"):
        name = f"vrl.{name}"
    return logging.getLogger(name)


def global_rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                continue
    return 0


def setup_logging(level: str | int = "INFO", rank: int | None = None, force: bool = False) -> None:
    """Configure the ``vrl`` logger once: INFO on rank 0, WARNING elsewhere, to stderr."""
    global _configured
    if _configured and not force:
        return
    rank = global_rank() if rank is None else rank
    root = logging.getLogger("vrl")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    fmt = _FORMAT if rank == 0 else f"%(asctime)s %(levelname).1s [rank{rank}] [%(name)s] %(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    root.setLevel(numeric if rank == 0 else max(logging.WARNING, numeric))
    root.propagate = False
    _configured = True


class _StdoutHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is when a record arrives (redirected, captured)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; stdout is looked up instead
        pass


def result_logger() -> logging.Logger:
    """``vrl.result``: what a script produces (its table), bare on stdout, apart from the log lines on
    stderr; rank 0 only, like the log."""
    logger = logging.getLogger("vrl.result")
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO if global_rank() == 0 else logging.WARNING)
    return logger
