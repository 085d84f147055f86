"""Reading and writing Hugging Face Qwen-VL checkpoints for the Megatron engine, without materialising the model.

:class:`HFCheckpoint` opens the safetensors files lazily (each rank reads only the tensors of its own
shard) and names them as the HF *modules* do, whatever layout the files use. Its ``skeleton`` is the HF
model built on the meta device: it costs no memory and provides the parameter names and shapes (the
order every rank streams weights in), the vision-tower class, the multimodal RoPE index computation and
``save_pretrained`` for export.
"""

from __future__ import annotations

import json
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from vrl.engines.megatron.bridge import HF_LM_HEAD, HF_VISION, module_name
from vrl.engines.megatron.spec import DecoderSpec
from vrl.models.loading import copy_processor_files
from vrl.models.pixels import accept_uint8_patches_tower
from vrl.models.tiny import resolve_model


class HFCheckpoint:
    def __init__(self, path: str | Path) -> None:
        from transformers import AutoConfig

        self.path = Path(resolve_model(path))
        self.config = AutoConfig.from_pretrained(str(self.path))
        self.spec = DecoderSpec.from_hf_config(self.config)
        self._files = self._index()

    def _index(self) -> dict[str, tuple[Path, str]]:
        """HF module name → (safetensors file, key in that file)."""
        index = self.path / "model.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
            pairs = [(key, self.path / fname) for key, fname in weight_map.items()]
        else:
            from safetensors import safe_open

            single = self.path / "model.safetensors"
            if not single.exists():
                raise ValueError(
                    f"{self.path} has no model.safetensors(.index.json): not a safetensors checkpoint"
                )
            with safe_open(str(single), "pt") as fh:
                keys = list(fh.keys())
            pairs = [(key, single) for key in keys]
        return {module_name(key): (file, key) for key, file in pairs}

    @cached_property
    def skeleton(self) -> Any:
        """The HF ``*ForConditionalGeneration`` on the meta device (names, shapes, helper methods)."""
        from transformers import AutoModelForImageTextToText

        with torch.device("meta"):
            return AutoModelForImageTextToText.from_config(self.config, dtype=torch.float32)

    def shapes(self) -> dict[str, torch.Size]:
        """HF state-dict names → shapes, in the model's own order."""
        return {name: t.shape for name, t in self.skeleton.state_dict().items()}

    def read(self, names: list[str] | tuple[str, ...]) -> list[torch.Tensor]:
        """The named tensors in float32 (a tied ``lm_head.weight`` reads the embedding)."""
        from safetensors import safe_open

        out = []
        for name in names:
            if name not in self._files and name == HF_LM_HEAD and self.spec.tied_embeddings:
                name = "model.language_model.embed_tokens.weight"
            if name not in self._files:
                raise ValueError(f"checkpoint {self.path} has no tensor for '{name}'")
            file, key = self._files[name]
            with safe_open(str(file), "pt") as fh:
                out.append(fh.get_tensor(key).to(torch.float32))
        return out

    def build_vision(self) -> torch.nn.Module:
        """The HF vision tower (patch embedding, blocks, merger; DeepStack mergers for Qwen3-VL), loaded."""
        cls = type(self.skeleton.model.visual)
        vision = cls._from_config(self.skeleton.config.vision_config, dtype=torch.float32)
        names = [n for n in self._files if n.startswith(HF_VISION)]
        state = dict(zip((n[len(HF_VISION) :] for n in names), self.read(names)))
        vision.load_state_dict(state, strict=True)
        return accept_uint8_patches_tower(vision, self.path)


def export_checkpoint(ckpt: HFCheckpoint, state: dict[str, torch.Tensor], path: Path) -> None:
    """Write ``state`` (full HF names) as a loadable HF checkpoint with processor files, atomically."""
    expected = set(ckpt.shapes())
    missing = expected - set(state)
    if missing:
        raise ValueError(f"export is missing {len(missing)} tensors, e.g. {sorted(missing)[:3]}")
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ckpt.skeleton.save_pretrained(tmp, state_dict=state)
    copy_processor_files(ckpt.path, tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
