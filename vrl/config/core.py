"""Typed configuration: dataclass schemas merged with YAML files and ``key=value`` overrides.

Merge order: schema defaults (or a named preset) ← ``config=path.yaml`` ← ``key=value`` overrides, then
every dataclass's ``validate()``. Values are parsed by OmegaConf (lists as ``a=[x,y]``); unknown keys and
wrong types raise :class:`ConfigError` naming the valid keys and the closest match; a float that is not a
finite number (``lr=nan``, ``fps=inf``), alone or in a list, is refused for every key.

Conventions a schema follows:
- one ``@dataclass`` per component, a docstring string literal under each field (see :func:`field_docs`);
- choices through :func:`choice`, so a bad value names the valid ones;
- a nested component with a ``name`` field accepts the shorthand ``engine=megatron`` for
  ``engine.name=megatron``;
- ``ALIASES: ClassVar[dict[str, str]]`` on the top-level schema maps short keys to dotted ones;
- optional ``validate(self)`` raising ``ValueError`` for cross-field rules (each class in the MRO that
  defines one is run, base classes first, so subclasses do not call ``super().validate()``); the message
  names the key with its group (``engine.lr must be > 0``).

:class:`UserError` is the one error type for a mistake in what the user gave (a key, a file, a record):
``jobs/submit.py`` prints it as one screen (the message, a hint, the job's log file) and exits with status
2, without a traceback, whether it was raised while submitting or inside the job. Anything else is a bug
in the project and keeps its traceback.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import textwrap
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")

#: keys handled by :func:`parse` itself rather than by the schema
RESERVED = ("config", "print_config")
#: a step count above this is a typo, not a plan (a billion steps): schemas refuse it naming the key
MAX_STEPS = 10**9


class UserError(ValueError):
    """A mistake in what the user gave (a key, a data file, a record, a model folder, an output path).

    The message names the file, record or key; ``hint`` says what to do (optional). It is a ``ValueError``,
    so code that handles bad values keeps handling it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __reduce__(self) -> tuple:  # keep the hint across pickling (processes, submitit)
        return (type(self), (str(self), self.hint))

    def screen(self) -> str:
        """What the user reads: ``error: <message>`` and ``hint: <hint>``."""
        return f"error: {self}" + (f"\nhint: {self.hint}" if self.hint else "")


class ConfigError(UserError):
    """A user error in configuration input (unknown key, wrong type, invalid value)."""


def choice(default: str, choices: Sequence[str]) -> Any:
    """A ``str`` field restricted to ``choices`` (checked after merging)."""
    if default not in choices:
        raise AssertionError(f"default {default!r} not in {choices}")
    return dataclasses.field(default=default, metadata={"choices": tuple(choices)})


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a schema, groups included (``engine``, ``engine.name``, ...)."""
    keys = []
    for name, tp in _field_types(cls).items():
        key = prefix + name
        keys.append(key)
        if _is_dataclass_type(tp):
            keys.extend(all_keys(tp, key + "."))
    return keys


def _resolve_key(cls: type, key: str) -> tuple[type, str]:
    """Walk ``a.b.c`` through nested dataclasses; return (owning class, leaf name) or raise."""
    parts = key.split(".")
    owner = cls
    for i, part in enumerate(parts):
        types = _field_types(owner)
        if part not in types:
            where = ".".join(parts[:i])
            valid = sorted(types)
            close = difflib.get_close_matches(
                key, all_keys(cls), n=1, cutoff=0.6
            ) or difflib.get_close_matches(part, valid, n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            scope = f" in '{where}'" if where else ""
            raise ConfigError(f"Unknown key '{key}'{scope}.{hint} Valid keys{scope}: {', '.join(valid)}.")
        if i < len(parts) - 1:
            nxt = types[part]
            if not _is_dataclass_type(nxt):
                raise ConfigError(
                    f"'{'.'.join(parts[: i + 1])}' is a value, not a group: cannot set '{key}'."
                )
            owner = nxt
    return owner, parts[-1]


def _split_overrides(args: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for arg in args:
        if "=" not in arg or arg.startswith("="):
            raise ConfigError(f"Malformed override '{arg}': expected key=value (lists as key=[a,b]).")
        key, value = arg.split("=", 1)
        pairs.append((key.strip(), value))
    return pairs


def _normalize(cls: type, key: str) -> str:
    """Apply aliases and the ``group=name`` shorthand."""
    aliases = getattr(cls, "ALIASES", {})
    head, _, rest = key.partition(".")
    if head in aliases:
        key = aliases[head] + ("." + rest if rest else "")
    owner, leaf = _resolve_key(cls, key)
    tp = _field_types(owner)[leaf]
    if _is_dataclass_type(tp):
        if "name" in _field_types(tp):
            return key + ".name"
        raise ConfigError(
            f"'{key}' is a group; set its fields, e.g. {key}.{next(iter(_field_types(tp)))}=..."
        )
    return key


def _flatten_yaml(cls: type, data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested YAML mapping → {normalized dotted key: value}, descending only into schema groups."""
    if not isinstance(data, dict):
        raise ConfigError(f"Config file section '{prefix or '<root>'}' must be a mapping.")
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        owner, leaf = _resolve_key(cls, key)
        if isinstance(v, dict) and _is_dataclass_type(_field_types(owner)[leaf]):
            flat.update(_flatten_yaml(cls, v, key + "."))
        else:
            flat[_normalize(cls, key)] = v
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *heads, leaf = key.split(".")
        for h in heads:
            node = node.setdefault(h, {})
        node[leaf] = value
    return out


def _format_validation(err: OmegaConfBaseException) -> str:
    msg = str(err).splitlines()[0]
    key = getattr(err, "full_key", None)
    return f"Invalid value for '{key}': {msg}" if key else msg


def _check_choices(obj: Any, prefix: str = "") -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(
                f"Invalid value for '{prefix}{f.name}': {value!r}. Valid choices: {', '.join(choices)}."
            )
        if dataclasses.is_dataclass(value):
            _check_choices(value, f"{prefix}{f.name}.")


def _check_finite(obj: Any, prefix: str = "") -> None:
    """Every float (or float in a list) is a finite number: ``nan`` passes every ``<`` / ``>`` check."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{prefix}{f.name}.")
            continue
        values = value if isinstance(value, list | tuple) else [value]
        bad = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ConfigError(f"Invalid value for '{prefix}{f.name}': {value!r} (not a finite number).")


def _validate(obj: Any) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _validate(value)
    # every class along the MRO that defines validate() runs it, base classes first: a stage schema
    # need not remember to call LaunchConfig's checks
    for klass in reversed(type(obj).__mro__):
        validate = klass.__dict__.get("validate")
        if not callable(validate):
            continue
        try:
            validate(obj)
        except UserError:
            raise
        except ValueError as e:
            raise ConfigError(str(e)) from e


def merge(base: T, yaml_files: Sequence[str | Path] = (), overrides: Sequence[str] = ()) -> T:
    """Merge YAML files and ``key=value`` overrides into ``base`` (a schema instance); validate."""
    cls = type(base)
    cfg: DictConfig = OmegaConf.structured(base)
    try:
        for path in yaml_files:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"Config file not found: {path}")
            data = yaml.safe_load(path.read_text()) or {}
            cfg = OmegaConf.merge(cfg, OmegaConf.create(_nest(_flatten_yaml(cls, data))))
        dotlist = [f"{_normalize(cls, k)}={v}" for k, v in _split_overrides(overrides)]
        if dotlist:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist))
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(_format_validation(e)) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file is not valid YAML: {e}") from e
    _check_choices(obj)
    _check_finite(obj)
    _validate(obj)
    return obj  # type: ignore[return-value]


def split_reserved(args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Separate ``config=`` / ``print_config=`` (and nothing else) from schema overrides."""
    reserved: dict[str, str] = {}
    rest = []
    for arg in args:
        key = arg.split("=", 1)[0]
        if key in RESERVED and "=" in arg:
            reserved[key] = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return reserved, rest


def parse_bool(text: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"Invalid value for '{key}': {text!r} is not a boolean (true/false).")


def parse(schema: type[T] | T, args: Sequence[str]) -> tuple[T, bool]:
    """Parse command-line ``args`` against ``schema`` (a class or a preset instance).

    Returns ``(config, print_config)``. ``config=a.yaml,b.yaml`` merges files in order.
    """
    base = schema() if isinstance(schema, type) else schema
    reserved, overrides = split_reserved(args)
    files = [p for p in reserved.get("config", "").split(",") if p]
    cfg = merge(base, files, overrides)
    return cfg, parse_bool(reserved.get("print_config", "false"), "print_config")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any, with_docs: bool = False) -> str:
    """Resolved config as YAML; ``with_docs`` adds each field's docstring as a comment."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False, width=100)
    if not with_docs:
        return text
    docs = {}
    _collect_docs(type(cfg), "", docs)
    out, stack = [], []
    for line in text.splitlines():
        stripped = line.lstrip()
        depth = (len(line) - len(stripped)) // 2
        key = stripped.split(":", 1)[0]
        stack = [*stack[:depth], key]
        doc = docs.get(".".join(stack))
        out.append(f"{line}  # {doc}" if doc and ":" in stripped else line)
    return "\n".join(out) + "\n"


def _collect_docs(cls: type, prefix: str, out: dict[str, str]) -> None:
    for name, doc in field_docs(cls).items():
        out[prefix + name] = doc
    for name, tp in _field_types(cls).items():
        if _is_dataclass_type(tp):
            _collect_docs(tp, f"{prefix}{name}.", out)


def field_docs(cls: type) -> dict[str, str]:
    """Field name → first line of the docstring literal written under the field (base classes too)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, [*body[1:], None]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = nxt.value.value.strip().splitlines()[0]
    return docs


def save(cfg: Any, path: str | Path) -> None:
    """Write the resolved config (YAML) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_yaml(cfg))
    tmp.replace(path)


def load(schema: type[T], path: str | Path) -> T:
    """Read a config saved by :func:`save` back into its schema."""
    return merge(schema(), [path])
