"""The optional LLM judge: its prompt, verdict parsing, and a run with the tiny model (plumbing only: a
random tiny model answers nonsense, which must read as "no", never crash)."""

from __future__ import annotations

from eval_harness.config import InferenceConfig
from eval_harness.judge import Judge, judge_text, load_verdicts, parse_verdict
from eval_harness.records import KEY

RECORD = {
    KEY: "0",
    "problem_id": 0,
    "problem": "In which room does the second fight take place?",
    "problem_type": "open-ended",
    "solution": "<answer>Kitchen</answer>",
}


def test_judge_prompt_shows_question_reference_and_extracted_answer():
    text = judge_text(RECORD, "<think>long reasoning</think><answer>the kitchen</answer>")
    assert "Reference answer: Kitchen" in text and "Model answer: the kitchen" in text
    assert "long reasoning" not in text and "<answer>yes</answer>" in text


def test_verdicts():
    assert parse_verdict("<answer>Yes</answer>") == 1.0
    assert parse_verdict("no") == 0.0
    assert parse_verdict("I think it might be right") is None


def test_judge_with_tiny_model_records_verdicts_once(tmp_path):
    records = [
        RECORD,
        {**RECORD, KEY: "1", "problem_id": 1},
        {**RECORD, KEY: "2", "problem_type": "multiple choice"},
    ]
    responses = {"0": "<answer>kitchen</answer>", "1": "<answer>garage</answer>", "2": "A"}
    judge = Judge("tiny-qwen2.5-vl", "hf", 4, InferenceConfig(batch_size=2), tmp_path)
    try:
        verdicts = judge.verdicts("vcrbench", records, responses)
    finally:
        judge.close()
    assert set(verdicts) == {"0", "1"} and set(verdicts.values()) <= {0.0, 1.0}
    assert load_verdicts(tmp_path, "vcrbench", judge.model) == verdicts
    again = Judge("tiny-qwen2.5-vl", "hf", 4, InferenceConfig(), tmp_path)
    assert again.verdicts("vcrbench", records, responses) == verdicts and again._engine is None  # nothing new
