"""Built-in problem types; importing this package registers them (done once by the registry)."""

from vrl.rewards.tasks import boolean, choice, code, grounding, numeric, preference, symbolic, text

__all__ = ["boolean", "choice", "code", "grounding", "numeric", "preference", "symbolic", "text"]
