"""A minimal Qwen2.5-VL / Qwen3-VL processor built in code (byte-level tokenizer, real image/video processors).

Only what the processor-equality test needs: the real transformers processor classes (so the video token
expansion, timestamps, patchify and normalisation are the real ones) around a tiny tokenizer.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL = [
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>")
    fast.add_special_tokens({"additional_special_tokens": SPECIAL})
    return fast


def tiny_processor(family: str, min_pixels: int = 64 * 32 * 32, max_pixels: int = 4096 * 32 * 32):
    """Processor of ``family`` (``qwen2_5_vl`` | ``qwen3_vl``) with a generous pixel range (no resizing)."""
    from transformers import Qwen2VLImageProcessor

    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    tokenizer = tiny_tokenizer()
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        patch = 14
        image = Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
        video = Qwen2VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
        return Qwen2_5_VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video)
    if family == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        patch = 16
        image = Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
        video = Qwen3VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
        return Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video)
    raise ValueError(f"unknown family {family!r}")
