"""Model builders: tiny Qwen-VL models built in code (see :mod:`vrl.models.tiny`)."""

from vrl.models.tiny import get_spec, model_dir, resolve_model, tiny_names, vrl_home

__all__ = ["get_spec", "model_dir", "resolve_model", "tiny_names", "vrl_home"]
