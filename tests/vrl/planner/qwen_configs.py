"""Public config shapes of Qwen2.5-VL-7B/32B/72B-Instruct (the fields memory depends on), as their
``config.json`` files give them (transformers-4 layout: text fields at the top level).

Read from public copies of the configs (looked up, not recalled): 7B from printed copies of its
config.json and module tree (vision 1280 wide, 32 blocks, 16 heads, SwiGLU 3420, window 112, full
attention in blocks 7/15/23/31; text 3584 × 28 layers, 28/4 heads, 18944, vocab 152064, untied); 72B from
public config tables (8192 × 80 layers, 64/8 heads, 29568, vocab 152064, vision out 8192); 32B from the
Qwen2.5-32B language model it is built on (5120 × 64 layers, 40/8 heads, 27648, vocab 152064) with the
same vision tower, merging into 5120.
"""

from __future__ import annotations

VISION = {
    "depth": 32,
    "hidden_act": "silu",
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "in_chans": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "tokens_per_second": 2,
}


def _config(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int) -> dict:
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": 152064,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "max_position_embeddings": 128000,
        "tie_word_embeddings": False,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "vision_config": {**VISION, "out_hidden_size": hidden},
    }


QWEN25_VL = {
    "Qwen2.5-VL-7B": _config(3584, 28, 28, 4, 18944),
    "Qwen2.5-VL-32B": _config(5120, 64, 40, 8, 27648),
    "Qwen2.5-VL-72B": _config(8192, 80, 64, 8, 29568),
}
