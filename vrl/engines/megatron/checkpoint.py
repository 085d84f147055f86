"""Megatron engine checkpoints that any tensor × pipeline × data-parallel layout can resume from.

Why: a run saved at one layout must be able to resume at another (more GPUs, a larger TP to fit memory).
Each (tensor, pipeline) shard is saved as it is (parallel writes, no gather to one rank) in safetensors
files, one per kind of state, written by data-parallel rank 0 of that shard:

- ``model``: the fp32 weights (the fp32 main weights with bf16 parameters), ``exp_avg``, ``exp_avg_sq``:
  AdamW's moments, the same shape as the weights (a distributed optimizer's 1/DP slices are assembled
  first), ``step``: AdamW's step count per tensor (0-d);
- keys are the stage's parameter names (``gpt.decoder.layers.0.mlp.linear_fc1.weight``, ``vision.…``).

On load at the same TP × PP each rank reads its own files. At another layout each tensor is resharded
through the HF ↔ Megatron mapping (:mod:`bridge`): the saved shards of the tensor it comes from are
joined into the full HF tensors (``to_hf``) and split for the new rank (``to_megatron``). Adam's moments
are element-wise, so they follow their weights through the same permutations exactly. A change of DP
needs nothing: the files hold whole tensors. ``layout.json`` is written last and marks a complete
checkpoint; ``state.json`` holds the LR schedule.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from vrl.engines.megatron import bridge
from vrl.engines.megatron.spec import DecoderSpec

FORMAT = "vrl-megatron/2"
KINDS = ("model", "exp_avg", "exp_avg_sq", "step")
"""What is saved per parameter; every kind but ``model`` is optional (a tensor the optimizer never stepped)."""


def shard_file(path: Path, kind: str, tp_rank: int, pp_rank: int) -> Path:
    return Path(path) / f"{kind}_tp{tp_rank:02d}_pp{pp_rank:03d}.safetensors"


def write_shard(path: Path, kind: str, tp_rank: int, pp_rank: int, tensors: dict[str, torch.Tensor]) -> None:
    """One kind of one shard's state, atomically (temp name, fsync, rename)."""
    from safetensors.torch import save_file

    target = shard_file(path, kind, tp_rank, pp_rank)
    tmp = target.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def write_manifest(path: Path, tp: int, pp: int, dp: int, state: dict) -> None:
    """``state.json`` (schedule) and, last, ``layout.json``: the checkpoint is complete once it exists."""
    for name, payload in (
        ("state.json", state),
        ("layout.json", {"format": FORMAT, "tp": tp, "pp": pp, "dp": dp}),
    ):
        tmp = Path(path) / (name + ".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, Path(path) / name)


class CheckpointReader:
    """Reads a checkpoint written at any layout as tensors of this rank's layout."""

    def __init__(self, path: Path, spec: DecoderSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        layout_file = self.path / "layout.json"
        if not layout_file.exists():
            raise ValueError(f"{self.path} is not a complete megatron checkpoint (no layout.json)")
        meta = json.loads(layout_file.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{self.path} was written in megatron checkpoint format {meta.get('format', 'v1 (per-rank .pt)')}, "
                f"this version reads {FORMAT}: resume with the version that wrote it, or start from its hf/ export"
            )
        self.tp, self.pp, self.dp = int(meta["tp"]), int(meta["pp"]), int(meta["dp"])
        self.state = json.loads((self.path / "state.json").read_text())
        # HF tensor name -> (saved pipeline stage, saved stage parameter name, its rule)
        self._source: dict[str, tuple[int, str, bridge.Rule]] = {}
        for pp_rank in range(self.pp):
            for name, rule in bridge.stage_rules(spec, self.pp, pp_rank).items():
                if bridge.is_duplicate(name, spec, self.pp, pp_rank):
                    continue
                for hf in rule.hf:
                    self._source[hf] = (pp_rank, "gpt." + name, rule)
        self._full: dict[tuple[str, int, str], dict[str, torch.Tensor]] = {}

    @property
    def lr(self) -> float:
        return float(self.state["lr"])

    def _read(self, kind: str, tp_rank: int, pp_rank: int, name: str) -> torch.Tensor | None:
        from safetensors import safe_open

        with safe_open(str(shard_file(self.path, kind, tp_rank, pp_rank)), "pt") as fh:
            names = set(fh.keys())  # safe_open has no __contains__
            return fh.get_tensor(name) if name in names else None

    def _hf_tensors(
        self, kind: str, pp_rank: int, name: str, rule: bridge.Rule
    ) -> dict[str, torch.Tensor] | None:
        """The full HF tensors of saved stage parameter ``name`` (all its TP shards joined), cached for the
        tensor being built (q, k and v of a fused QKV come from one saved tensor)."""
        key = (kind, pp_rank, name)
        if key not in self._full:
            shards = [self._read(kind, t, pp_rank, name) for t in range(self.tp)]
            if any(s is None for s in shards):
                return None
            self._full = {key: dict(zip(rule.hf, bridge.to_hf(rule, shards, self.spec)))}
        return self._full[key]

    def tensor(
        self, kind: str, name: str, rule: bridge.Rule | None, tp_rank: int, tp: int, pp_rank: int, pp: int
    ) -> torch.Tensor | None:
        """This rank's ``kind`` tensor of stage parameter ``name`` (``rule``: its HF mapping at the current
        layout; None for the vision tower), or None when the checkpoint has none (optimizer state of a
        tensor never stepped)."""
        if name.startswith("vision."):  # the HF tower, whole on every stage-0 rank
            return self._read(kind, 0, 0, name)
        if (tp, pp) == (self.tp, self.pp):
            return self._read(kind, tp_rank, pp_rank, name)
        assert rule is not None, name
        sources = [self._source[hf] for hf in rule.hf]
        if kind == "step":  # per tensor: every HF tensor of it comes from saved tensors stepped alike
            steps = [self._read(kind, 0, s_pp, s_name) for s_pp, s_name, _ in sources]
            return None if any(s is None for s in steps) else max(steps, key=float)
        full: dict[str, torch.Tensor] = {}
        for s_pp, s_name, s_rule in sources:
            tensors = self._hf_tensors(kind, s_pp, s_name, s_rule)
            if tensors is None:
                return None
            full.update(tensors)
        return bridge.to_megatron(rule, [full[h] for h in rule.hf], self.spec, tp_rank, tp)
