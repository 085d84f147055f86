"""A small byte-level BPE tokenizer for the tiny Qwen-VL models, trained deterministically in code.

Why: the real Qwen vocabulary (151k rows) would make the embedding ~95% of a tiny model's parameters and
is not available offline. The tokenizer mirrors Qwen2's (NFC normalizer, Qwen2 split regex, byte-level
pre-tokenizer and decoder, so any text encodes without unknown tokens) and carries the special tokens the
family's processor and chat template expect, appended after the learned vocabulary.

``<think>``, ``</think>``, ``<answer>``, ``</answer>`` are added as (non-special) single tokens so a tiny
model can emit the answer format in a few steps; decoding with ``skip_special_tokens`` keeps them.
"""

from __future__ import annotations

import json

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2TokenizerFast

from vrl.models.chat_template import chat_template
from vrl.models.corpus import corpus_lines

# Qwen2's pre-tokenization split: contractions, letter runs, single digits, punctuation runs, whitespace.
SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

EOS_TEXT = "<|endoftext|>"

# In the order of the real Qwen2.5-VL vocabulary (ids follow the learned vocabulary here).
QWEN_SPECIAL = [
    EOS_TEXT,
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Added but not special in the real vocabularies (kept by skip_special_tokens).
QWEN_ADDED = [
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]
FAMILY_ADDED = {
    "qwen2.5-vl": [],
    "qwen3-vl": ["<tool_response>", "</tool_response>"],
}
REASONING_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]


def _train_bpe(vocab_size: int) -> Tokenizer:
    """Byte-level BPE over the embedded corpus; ``<|endoftext|>`` gets id 0 as in Qwen2's tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[EOS_TEXT],
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return tok


def build_tokenizer(family: str, vocab_size: int) -> Qwen2TokenizerFast:
    """Train the BPE (``vocab_size`` learned entries) and wrap it with the family's special tokens."""
    template = chat_template(family)
    bpe = _train_bpe(vocab_size)
    tokenizer = Qwen2TokenizerFast(
        vocab=bpe.get_vocab(),
        merges=_merges(bpe),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token=EOS_TEXT,
        additional_special_tokens=QWEN_SPECIAL[1:],
        model_max_length=32768,
        chat_template=template,
    )
    tokenizer.add_tokens(QWEN_ADDED + FAMILY_ADDED[family] + REASONING_TAGS, special_tokens=False)
    return tokenizer


def _merges(bpe: Tokenizer) -> list[tuple[str, str]]:
    """The learned merges in rank order (read from the serialized model: the Python API hides them)."""
    data = json.loads(bpe.to_str())
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["model"]["merges"]]
