"""Tiny, randomly initialised Qwen2.5-VL and Qwen3-VL models, built in code and cached on first use.

Why: tests, CI and the toy RL run need real model classes (same processors, chat templates, vision
tokens, M-RoPE, vLLM support) without downloading checkpoints. A tiny model is built deterministically
(seeded weights, deterministically trained tokenizer) into ``$VRL_HOME/models/<name>-<hash>/`` where the
hash covers its full definition, so a changed definition builds a new directory and never reuses a stale
one. The directory is an ordinary Hugging Face checkpoint: ``AutoProcessor``/``AutoModelForImageTextToText``
and vLLM load it from the path.

Sizes: text hidden 128 with 4 heads of 32 (vLLM's CPU attention needs head size ≥ 32), 2 KV heads, tied
embeddings, a ~2k-token vocabulary; vision tower of depth 2 and width 64. The processors get explicit
small pixel budgets so small toy frames are not upscaled to the real models' minimum sizes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vrl.file_lock import file_lock
from vrl.log import get_logger
from vrl.models.chat_template import chat_template
from vrl.models.corpus import corpus_lines

logger = get_logger(__name__)

#: bump when the build procedure changes in a way the spec fields do not capture
BUILD_VERSION = 1


@dataclass(frozen=True)
class TinySpec:
    """Everything that defines a tiny model; its JSON form is hashed into the cache directory name."""

    name: str
    family: str
    """``qwen2.5-vl`` or ``qwen3-vl``: selects config, model and processor classes."""
    seed: int
    bpe_vocab_size: int
    """Learned BPE entries; special and added tokens come after them."""
    text: dict[str, Any]
    vision: dict[str, Any]
    image_size: dict[str, int]
    """Image processor pixel budget (``shortest_edge``/``longest_edge`` are min/max pixels)."""
    video_size: dict[str, int]
    """Video processor pixel budget (per frame for Qwen2.5-VL, per clip for Qwen3-VL)."""
    pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Normalization of image and video pixels (the family's own values; both processors share them)."""
    pixel_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    extra_config: dict[str, Any] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The spec plus the embedded corpus and template: all inputs of a build."""
        return {
            **asdict(self),
            "build_version": BUILD_VERSION,
            "corpus_sha256": hashlib.sha256("\n".join(corpus_lines()).encode()).hexdigest(),
            "chat_template": chat_template(self.family),
        }

    def short_hash(self) -> str:
        blob = json.dumps(self.definition(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


_REGISTRY: dict[str, TinySpec] = {}


def register(spec: TinySpec) -> TinySpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"tiny model '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def tiny_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> TinySpec:
    if name not in _REGISTRY:
        raise ValueError(f"Unknown tiny model '{name}'. Registered: {', '.join(tiny_names())}.")
    return _REGISTRY[name]


_TEXT_COMMON = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
}

register(
    TinySpec(
        name="tiny-qwen2.5-vl",
        family="qwen2.5-vl",
        seed=0,
        bpe_vocab_size=2048,
        # mrope_section (t, h, w) sums to head_dim / 2 = 16, in the real model's 2:3:3 proportion.
        text={
            **_TEXT_COMMON,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
        },
        vision={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "out_hidden_size": 128,
        },
        image_size={"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 256},
        video_size={"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 256},
        pixel_mean=(0.48145466, 0.4578275, 0.40821073),  # CLIP's, as Qwen2.5-VL
        pixel_std=(0.26862954, 0.26130258, 0.27577711),
    )
)

register(
    TinySpec(
        name="tiny-qwen3-vl",
        family="qwen3-vl",
        seed=0,
        bpe_vocab_size=2048,
        # Interleaved M-RoPE; sections sum to head_dim / 2 = 16 in the real model's 24:20:20 proportion.
        text={
            **_TEXT_COMMON,
            "head_dim": 32,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5e6,
                "mrope_section": [6, 5, 5],
                "mrope_interleaved": True,
            },
        },
        vision={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 128,
            "num_position_embeddings": 1024,
            "deepstack_visual_indexes": [0],
            "hidden_act": "gelu_pytorch_tanh",
        },
        image_size={"shortest_edge": 32 * 32, "longest_edge": 32 * 32 * 256},
        video_size={"shortest_edge": 32 * 32 * 2, "longest_edge": 32 * 32 * 2 * 256},
    )
)


def vrl_home() -> Path:
    """Root of the project's local caches: ``$VRL_HOME`` or ``~/.cache/vrl``."""
    return Path(os.environ.get("VRL_HOME") or Path.home() / ".cache" / "vrl").expanduser()


def model_dir(name: str) -> Path:
    """Where a registered tiny model lives (built or not)."""
    spec = get_spec(name)
    return vrl_home() / "models" / f"{spec.name}-{spec.short_hash()}"


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """A registered tiny name → its built directory (building it once); a model directory → itself.

    Safe under concurrency: Slurm array tasks and DDP ranks calling this together build the model once
    (a file lock), and readers never see a half-written directory (built in a temp dir, then renamed).
    """
    text = os.fspath(name_or_path)
    if text in _REGISTRY:
        target = model_dir(text)
        if not (target / "config.json").is_file():
            with file_lock(target.with_name(f".{target.name}.lock")):
                if not (target / "config.json").is_file():
                    _build_atomic(get_spec(text), target)
        return target
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"Model directory {path} has no config.json: not a Hugging Face model.")
        return path
    raise ValueError(
        f"'{text}' is neither a registered tiny model nor a model directory. "
        f"Registered tiny models: {', '.join(tiny_names())}."
    )


def _build_atomic(spec: TinySpec, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build_tiny(spec, tmp)
        if target.exists():  # a leftover without config.json (e.g. emptied by hand)
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("built tiny model %s at %s", spec.name, target)


def build_tiny(spec: TinySpec, out_dir: str | os.PathLike[str]) -> Path:
    """Build ``spec`` into ``out_dir`` (config, safetensors weights, tokenizer, processor)."""
    import torch

    from vrl.models.tokenizer import build_tokenizer

    out = Path(out_dir)
    tokenizer = build_tokenizer(spec.family, spec.bpe_vocab_size)
    processor = _build_processor(spec, tokenizer)
    config = _build_config(spec, tokenizer)
    model_cls = _model_class(spec.family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = model_cls(config).to(torch.float32).eval()
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _padded_vocab(tokenizer: Any) -> int:
    """Embedding rows: the tokenizer length rounded up to a multiple of 64 (as the real models pad)."""
    return -(-len(tokenizer) // 64) * 64


def _build_config(spec: TinySpec, tokenizer: Any) -> Any:
    ids = {
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }
    text = {
        **spec.text,
        "vocab_size": _padded_vocab(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    if spec.family == "qwen2.5-vl":
        from transformers import Qwen2_5_VLConfig as config_cls

        text.update(bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    else:
        from transformers import Qwen3VLConfig as config_cls
    return config_cls(
        text_config=text,
        vision_config=dict(spec.vision),
        tie_word_embeddings=True,
        dtype="float32",
        **ids,
        **spec.extra_config,
    )


def _model_class(family: str) -> type:
    if family == "qwen2.5-vl":
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration
    from transformers import Qwen3VLForConditionalGeneration

    return Qwen3VLForConditionalGeneration


def _build_processor(spec: TinySpec, tokenizer: Any) -> Any:
    from transformers import Qwen2VLImageProcessor

    patch, merge, temporal = (
        spec.vision[k] for k in ("patch_size", "spatial_merge_size", "temporal_patch_size")
    )
    common = {
        "patch_size": patch,
        "merge_size": merge,
        "temporal_patch_size": temporal,
        "image_mean": list(spec.pixel_mean),
        "image_std": list(spec.pixel_std),
    }
    image_processor = Qwen2VLImageProcessor(size=dict(spec.image_size), **common)
    # cap_pixels_per_frame: bound a clip's total pixels the way qwen-vl-utils does (transformers' future
    # default; setting it also silences the warning about the change).
    video_kwargs = {"size": dict(spec.video_size), "cap_pixels_per_frame": True, **common}
    if spec.family == "qwen2.5-vl":
        from transformers import Qwen2_5_VLProcessor as processor_cls
        from transformers import Qwen2VLVideoProcessor as video_cls
    else:
        from transformers import Qwen3VLProcessor as processor_cls
        from transformers import Qwen3VLVideoProcessor as video_cls
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_cls(**video_kwargs),
        chat_template=chat_template(spec.family),
    )


def _generation_config(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
