"""The toy video suite: seeded, exactly labelled videos and images drawn with ffmpeg (embedded default data)."""

from vrl.toy.spec import ToyConfig
from vrl.toy.suite import ensure_toy_suite, suite_dir

__all__ = ["ToyConfig", "ensure_toy_suite", "suite_dir"]
