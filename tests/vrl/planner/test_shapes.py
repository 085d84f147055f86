"""The planner's parameter lists equal the models' own, name for name and shape for shape: the tiny
checkpoints (both families, built) and Qwen2.5-VL-7B/32B/72B (built on the meta device from their public
config shapes; no weights)."""

from __future__ import annotations

import json

import pytest
import torch
from qwen_configs import QWEN25_VL

from vrl.planner.shapes import ModelShapes, read_shapes
from vrl.planner.tensors import hf_parameters, total_numel


def _theirs(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_tiny_models_parameter_for_parameter(tiny_models, name):
    from vrl.models.loading import load_hf_model

    mine = {p.name: p.shape for p in hf_parameters(read_shapes(tiny_models[name]))}
    assert mine == _theirs(load_hf_model(tiny_models[name]))
    assert read_shapes(name) == read_shapes(tiny_models[name])  # a registered name reads the same file


@pytest.mark.parametrize(
    ("name", "billions"), [("Qwen2.5-VL-7B", 8.29), ("Qwen2.5-VL-32B", 33.45), ("Qwen2.5-VL-72B", 73.41)]
)
def test_qwen25_vl_sizes_equal_the_hf_model_built_on_meta(name, billions):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = QWEN25_VL[name]
    shapes = ModelShapes.from_config(config)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**config))
    assert {p.name: p.shape for p in hf_parameters(shapes)} == _theirs(model)
    assert total_numel(shapes) / 1e9 == pytest.approx(billions, abs=0.005)


def test_both_config_layouts_read_alike(tiny_models):
    nested = json.loads((tiny_models["tiny-qwen2.5-vl"] / "config.json").read_text())
    flat = {**{k: v for k, v in nested.items() if k != "text_config"}, **nested["text_config"]}
    flat["model_type"] = "qwen2_5_vl"
    assert ModelShapes.from_config(flat) == ModelShapes.from_config(nested)


def test_missing_fields_and_other_models_are_named():
    config = json.loads(json.dumps(QWEN25_VL["Qwen2.5-VL-7B"]))
    del config["intermediate_size"]
    with pytest.raises(ValueError, match="'intermediate_size'"):
        ModelShapes.from_config(config)
    with pytest.raises(ValueError, match="model_type 'llama'"):
        ModelShapes.from_config({"model_type": "llama"})
