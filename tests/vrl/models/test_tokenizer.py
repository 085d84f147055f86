import pytest

from vrl.models.tokenizer import QWEN_SPECIAL, REASONING_TAGS, build_tokenizer

FAMILIES = ["qwen2.5-vl", "qwen3-vl"]


@pytest.fixture(scope="module", params=FAMILIES)
def tok(request):
    return request.param, build_tokenizer(request.param, 2048)


def test_special_tokens_are_single_ids(tok):
    _, tokenizer = tok
    for token in QWEN_SPECIAL + REASONING_TAGS:
        ids = tokenizer(token, add_special_tokens=False).input_ids
        assert len(ids) == 1, token
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_roundtrip_and_tags_survive_skip_special(tok):
    _, tokenizer = tok
    text = 'What color? <think>red, 29.97 fps</think><answer>{"time": [1.5, 2.0]}</answer>'
    ids = tokenizer(text + "<|im_end|>").input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.decode(tokenizer("héllo ✓ 漢字").input_ids) == "héllo ✓ 漢字"  # byte-level: no unknowns


def test_toy_prompt_words_are_single_tokens(tok):
    _, tokenizer = tok
    for word in ["color", "square", "circle", "direction", "flash", "seconds", "answer"]:
        assert len(tokenizer(" " + word).input_ids) == 1, word


def test_chat_template_renders_vision_items(tok):
    family, tokenizer = tok
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "Q?"}]},
        {"role": "assistant", "content": "<answer>A</answer>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    body = (
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n"
        "<|im_start|>assistant\n<answer>A</answer><|im_end|>\n"
    )
    system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" if family == "qwen2.5-vl" else ""
    assert text == system + body
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("Q?<|im_end|>\n<|im_start|>assistant\n")
    numbered = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_vision_id=True)
    assert "Video 1: <|vision_start|>" in numbered and "Picture 1: <|vision_start|>" in numbered
