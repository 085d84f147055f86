"""The one registry of problem types: canonical names, aliases, answer formats and reward functions.

A reward function judges the *extracted answer* (see :mod:`vrl.rewards.extract`) of one sample:
``fn(answer: str, sample: dict, config: RewardConfig) -> float | Verdict | dict`` (``fn(answer, sample)``
and ``fn(answer)`` are accepted too). It must never raise because of the answer (model output is
untrusted) and may raise ``ValueError`` for a malformed ground truth (a data error). A plain float return
means "accuracy, answer parsed"; a dict carries ``accuracy``, optionally ``parsed`` and extra metrics.

Built-in types live in :mod:`vrl.rewards.tasks`; users add their own with :func:`register_reward` in
their own module and name it in ``reward.extra_modules`` (imported by module name, never by path).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vrl.log import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What a reward function found in an answer."""

    accuracy: float
    """Task accuracy in [0, 1] (clipped by the caller)."""
    parsed: bool = True
    """The answer parses in the format of the type (drives ``format``: 1.0 parsed, 0.5 not)."""
    extras: Mapping[str, float] = field(default_factory=dict)
    """Extra float metrics (``iou``, ``timeout``, ...) added to the score dict."""


CONCURRENCY = ("inline", "thread", "process")

RewardFn = Callable[[str, dict, Any], "float | Verdict"]


@dataclass(frozen=True)
class RewardType:
    name: str
    """Canonical problem type."""
    fn: RewardFn
    """The reward function."""
    aliases: tuple[str, ...]
    """Other spellings found in datasets."""
    answer_format: str
    """What the answer must look like, in words (used in prompt instructions)."""
    example: str
    """A valid answer (used in prompt instructions)."""
    isolated: bool = False
    """Always run in a scoring worker process (untrusted parsing with signals/eval inside: math-verify)."""
    concurrency: str = "inline"
    """score_batch: inline (fast, in the caller), thread (waits on a subprocess), process (CPU-heavy)."""


_lock = threading.RLock()
_types: dict[str, RewardType] = {}
_lookup: dict[str, str] = {}  # normalized name or alias -> canonical name
_builtins_loaded = False
_loading_builtins = False
_loaded_modules: set[str] = set()
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _norm(name: str) -> str:
    return " ".join(str(name).strip().lower().replace("_", " ").split())


def _adapt(fn: Callable) -> RewardFn:
    """Accept ``fn(answer)``, ``fn(answer, sample)`` and ``fn(answer, sample, config)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return fn
    required = [p for p in params if p.kind in _POSITIONAL]
    if len(required) >= 3:
        return fn
    if not required:
        raise ValueError(f"Reward function {fn!r} must take (answer, sample[, config]).")

    @functools.wraps(fn)
    def adapted(answer: str, sample: dict, config: Any) -> Any:
        return fn(answer, sample) if len(required) == 2 else fn(answer)

    return adapted


def register_reward(
    name: str,
    *,
    aliases: Iterable[str] = (),
    answer_format: str = "the final answer only",
    example: str = "...",
    isolated: bool = False,
    concurrency: str = "inline",
) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering ``fn(answer, sample, config) -> float | Verdict`` as problem type ``name``.

    Names and aliases match case-insensitively, ``_`` reading as a space (``Multiple_Choice`` finds
    ``multiple choice``). A name or alias already taken (built-in types included) raises ``ValueError``.
    ``answer_format`` and ``example`` feed :func:`vrl.rewards.answer_instruction`.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A reward type needs a non-empty name, got {name!r}.")
    if concurrency not in CONCURRENCY:
        raise ValueError(f"concurrency must be one of {CONCURRENCY}, got {concurrency!r}.")

    def decorator(fn: RewardFn) -> RewardFn:
        _ensure_builtins()  # so a user type cannot take a built-in name before the built-ins load
        rtype = RewardType(
            name=name,
            fn=_adapt(fn),
            aliases=tuple(aliases),
            answer_format=answer_format,
            example=example,
            isolated=isolated,
            concurrency=concurrency,
        )
        with _lock:
            keys = list(dict.fromkeys(_norm(k) for k in (name, *rtype.aliases)))
            for key in keys:
                if key in _lookup:
                    raise ValueError(
                        f"Reward type name {key!r} (registering {name!r}) is already taken by "
                        f"{_lookup[key]!r}."
                    )
            _types[name] = rtype
            for key in keys:
                _lookup[key] = name
        return fn

    return decorator


def unregister_reward(name: str) -> None:
    """Remove a type and its aliases (for tests of extensions)."""
    with _lock:
        canonical = _lookup.get(_norm(name))
        if canonical is None:
            raise ValueError(f"Unknown problem type {name!r}.")
        del _types[canonical]
        for key in [k for k, v in _lookup.items() if v == canonical]:
            del _lookup[key]


def _ensure_builtins() -> None:
    global _builtins_loaded, _loading_builtins
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded or _loading_builtins:  # the built-in modules register while loading
            return
        _loading_builtins = True
        try:
            importlib.import_module("vrl.rewards.tasks")
        finally:
            _loading_builtins = False
        _builtins_loaded = True


def load_extra_modules(names: Iterable[str]) -> None:
    """Import user modules that register types; by module name only (a path raises ``ValueError``)."""
    _ensure_builtins()
    for name in names:
        if name in _loaded_modules:
            continue
        if not isinstance(name, str) or "/" in name or "\\" in name or name.endswith(".py"):
            raise ValueError(f"extra_modules takes module names like 'mypkg.rewards', not paths: {name!r}.")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            raise ValueError(f"Reward extension module {name!r} cannot be imported: {e}.") from e
        with _lock:
            _loaded_modules.add(name)
        logger.debug("loaded reward extension module %s", name)


def known_types() -> list[str]:
    """Canonical names of every registered problem type, sorted."""
    _ensure_builtins()
    with _lock:
        return sorted(_types)


def canonical_type(name: str) -> str:
    """Canonical name of a problem type or alias; ``ValueError`` listing the known types otherwise."""
    _ensure_builtins()
    with _lock:
        canonical = _lookup.get(_norm(name)) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"Unknown problem type {name!r}. Known types: {', '.join(known_types())}.")
    return canonical


def get_type(name: str) -> RewardType:
    """The registered :class:`RewardType` of a problem type or alias (``ValueError`` if unknown)."""
    canonical = canonical_type(name)
    with _lock:
        return _types[canonical]


def aliases_of(name: str) -> tuple[str, ...]:
    return get_type(name).aliases
