"""Run by test_tiny_vllm.py in a subprocess: vLLM spawns its engine, so it needs a ``__main__`` guard.

For a text, an image and a video prompt, compares vLLM (CPU) with transformers on the same model: prompt
token ids, the first token's top-5 log-probs, and 8 greedy tokens. Prints one line ``RESULT {json}``.
"""

import json
import sys

import numpy as np

NUM_NEW = 8


def _cases() -> dict:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (4, 90, 122, 3), dtype=np.uint8)
    image = rng.integers(0, 256, (77, 101, 3), dtype=np.uint8)
    meta = {"total_num_frames": 4, "fps": 2.0, "duration": 2.0, "frames_indices": [0, 1, 2, 3]}
    text = {"type": "text", "text": "What color is the square?"}
    return {
        "text": ([text], None, {}),
        "image": ([{"type": "image"}, text], {"image": image}, {"images": [image]}),
        "video": (
            [{"type": "video"}, text],
            {"video": [(video, {**meta, "do_sample_frames": False})]},
            {"videos": [video], "video_metadata": [meta], "do_sample_frames": False},
        ),
    }


def main(model_dir: str) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=model_dir,
        dtype="float32",
        max_model_len=2048,
        limit_mm_per_prompt={"video": 1, "image": 1},
        seed=0,
    )
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    params = SamplingParams(max_tokens=NUM_NEW, temperature=0.0, ignore_eos=True, logprobs=5)
    results = {}
    for name, (content, mm_data, hf_kwargs) in _cases().items():
        prompt = processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        request = {"prompt": prompt, **({"multi_modal_data": mm_data} if mm_data else {})}
        request_out = llm.generate([request], params)[0]
        out = request_out.outputs[0]
        inputs = processor(text=[prompt], return_tensors="pt", **hf_kwargs)
        gen = model.generate(
            **inputs,
            max_new_tokens=NUM_NEW,
            min_new_tokens=NUM_NEW,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
        first = torch.log_softmax(
            gen.logits[0][0].float(), -1
        )  # raw: scores are after min_new_tokens masking
        n = inputs["input_ids"].shape[1]
        results[name] = {
            "prompt_ids_equal": list(request_out.prompt_token_ids) == inputs["input_ids"][0].tolist(),
            "max_logprob_diff": max(abs(first[i].item() - lp.logprob) for i, lp in out.logprobs[0].items()),
            "vllm_ids": list(out.token_ids),
            "hf_ids": gen.sequences[0, n:].tolist(),
        }
    return results


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1])))
