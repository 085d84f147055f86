"""Chat templates of the tiny models, rendering like the Qwen-VL families' own templates.

Why our own: the real templates ship with the real checkpoints, which are not available offline. What must
match is the rendered text, since the processors expand ``<|image_pad|>`` / ``<|video_pad|>`` and RL code
tokenizes prompts through ``apply_chat_template``:

- turns are ``<|im_start|>{role}\\n{content}<|im_end|>\\n``;
- an image item (``{"type": "image"}``, or any item with an ``image``/``image_url`` key) renders as
  ``<|vision_start|><|image_pad|><|vision_end|>``, a video item as ``<|vision_start|><|video_pad|><|vision_end|>``,
  a text item as its text; ``add_vision_id=True`` prefixes ``Picture n: `` / ``Video n: ``;
- ``add_generation_prompt`` appends ``<|im_start|>assistant\\n``;
- Qwen2.5-VL inserts the default system turn ``You are a helpful assistant.`` when the first message is
  not a system message; Qwen3-VL does not.
"""

from __future__ import annotations

DEFAULT_SYSTEM = "You are a helpful assistant."

# Written without literal newlines: every newline is emitted by an expression, so the whitespace control
# of the Jinja environment (trim_blocks, lstrip_blocks) cannot change the output. The vision counters live in
# a namespace so numbering continues across messages.
_CONTENT = (
    "{% macro render(content, counts) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for item in content %}"
    "{% if item.type == 'image' or 'image' in item or 'image_url' in item %}"
    "{% set counts.image = counts.image + 1 %}"
    "{% if add_vision_id %}{{ 'Picture ' ~ counts.image ~ ': ' }}{% endif %}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif item.type == 'video' or 'video' in item %}"
    "{% set counts.video = counts.video + 1 %}"
    "{% if add_vision_id %}{{ 'Video ' ~ counts.video ~ ': ' }}{% endif %}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif 'text' in item %}{{ item.text }}"
    "{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
)

_TURNS = (
    "{% set counts = namespace(image=0, video=0) %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message.role + '\\n' }}{{ render(message.content, counts) }}{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_DEFAULT_SYSTEM_TURN = (
    "{% if messages and messages[0].role != 'system' %}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{% endif %}"
)

TEMPLATES = {
    "qwen2.5-vl": _CONTENT + _DEFAULT_SYSTEM_TURN + _TURNS,
    "qwen3-vl": _CONTENT + _TURNS,
}


def chat_template(family: str) -> str:
    """The Jinja chat template of a model family (``qwen2.5-vl`` or ``qwen3-vl``)."""
    if family not in TEMPLATES:
        raise ValueError(f"Unknown model family '{family}'. Known families: {', '.join(sorted(TEMPLATES))}.")
    return TEMPLATES[family]
