"""Tensor × pipeline × data-parallel layouts: which ones a checkpoint admits, checked before any process starts.

A wrong layout found inside megatron-core surfaces as an assertion deep in a worker after every rank has
started (or as silently wrong numbers: splitting KV heads unevenly). :func:`layout_errors` lists every
reason a layout does not fit a checkpoint, in words; :func:`check_layout` raises them as one ValueError.
The train stage calls it before ``init_distributed``, and ``Config.validate`` when it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vrl.engines.megatron.spec import DecoderSpec


@dataclass(frozen=True)
class Layout:
    tp: int
    pp: int
    world: int

    @property
    def dp(self) -> int:
        return self.world // (self.tp * self.pp)


def layout_errors(spec: DecoderSpec, tp: int, pp: int, world: int) -> list[str]:
    """Every reason ``tp`` × ``pp`` on ``world`` ranks cannot hold ``spec`` (empty when it can)."""
    errors: list[str] = []
    if tp < 1 or pp < 1:
        return [f"tensor_parallel_size ({tp}) and pipeline_parallel_size ({pp}) must be >= 1"]
    if world % (tp * pp):
        errors.append(
            f"world size {world} is not a multiple of tensor_parallel × pipeline_parallel = {tp * pp}"
        )
    if spec.num_heads % tp:
        errors.append(f"tensor_parallel_size={tp} does not divide the {spec.num_heads} attention heads")
    if spec.num_kv_heads % tp:
        errors.append(
            f"tensor_parallel_size={tp} does not divide the {spec.num_kv_heads} key/value heads "
            "(grouped-query attention keeps whole KV groups on one rank)"
        )
    if spec.ffn_hidden_size % tp:
        errors.append(f"tensor_parallel_size={tp} does not divide the MLP width {spec.ffn_hidden_size}")
    if spec.vocab_size % tp:
        errors.append(f"tensor_parallel_size={tp} does not divide the vocabulary size {spec.vocab_size}")
    if spec.num_layers % pp:
        errors.append(f"pipeline_parallel_size={pp} does not divide the {spec.num_layers} decoder layers")
    elif spec.num_deepstack > spec.num_layers // pp:
        errors.append(
            f"Qwen3-VL DeepStack adds vision features after the first {spec.num_deepstack} decoder layers, "
            f"which must sit on pipeline stage 0 with the vision tower; stage 0 holds only "
            f"{spec.num_layers // pp} layers with pipeline_parallel_size={pp}"
        )
    return errors


def check_layout(spec: DecoderSpec, tp: int, pp: int, world: int) -> Layout:
    """The layout, or a ValueError naming every reason it does not fit the checkpoint."""
    errors = layout_errors(spec, tp, pp, world)
    if errors:
        raise ValueError(
            f"invalid megatron layout TP={tp} × PP={pp} on {world} ranks for this {spec.family} checkpoint: "
            + "; ".join(errors)
        )
    return Layout(tp, pp, world)


def check_model_layout(model: str | Path, tp: int, pp: int, world: int) -> Layout:
    """:func:`check_layout` for a checkpoint directory or registered tiny-model name (reads config.json only)."""
    return check_layout(DecoderSpec.from_pretrained(model), tp, pp, world)


def spec_if_readable(model: str | Path) -> DecoderSpec | None:
    """The checkpoint's spec when its config.json already exists (a tiny model is never built here)."""
    from vrl.models.tiny import model_dir, tiny_names

    name = str(model)
    path = model_dir(name) if name in tiny_names() else Path(name).expanduser()
    if not (path / "config.json").is_file():
        return None
    return DecoderSpec.from_pretrained(path)
