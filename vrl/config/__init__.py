"""Typed configuration schemas, ``key=value`` overrides and named presets."""

from vrl.config.core import (
    MAX_STEPS,
    ConfigError,
    UserError,
    all_keys,
    choice,
    field_docs,
    load,
    merge,
    parse,
    parse_bool,
    save,
    to_dict,
    to_yaml,
)
from vrl.config.presets import get_preset, preset_names, register_preset

__all__ = [
    "MAX_STEPS",
    "ConfigError",
    "UserError",
    "all_keys",
    "choice",
    "field_docs",
    "get_preset",
    "load",
    "merge",
    "parse",
    "parse_bool",
    "preset_names",
    "register_preset",
    "save",
    "to_dict",
    "to_yaml",
]
