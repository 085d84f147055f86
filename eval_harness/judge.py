"""Optional second stage: an LLM judge re-scores open-ended answers (VCR-Bench, VideoReasonBench, MMVU).

The judge is a user-given model run through the same asynchronous engines as the evaluation, on text-only
prompts (question, reference, the answer extracted from the response). It replies yes or no; the verdict
(1/0) replaces the rule-based score of that record in the aggregation. Verdicts are appended to
``<run>/judge/<benchmark>.jsonl`` with the judge model, so an aggregation rerun only judges what is new.
An unreadable reply is a "no" (malformed output is a wrong answer, never a crash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval_harness.predictions import PredictionWriter, read_lines
from eval_harness.records import KEY
from eval_harness.scoring import JUDGED_TYPES
from vrl.batch import Prompt
from vrl.log import get_logger
from vrl.rewards import canonical_type, extract_answer, ground_truth
from vrl.rewards.tasks.boolean import parse_bool
from vrl.rollout.base import SamplingParams

logger = get_logger(__name__)

#: longest answer shown to the judge (characters)
MAX_ANSWER_CHARS = 2000


def judge_text(record: dict[str, Any], response: str) -> str:
    """The judge's prompt for one answer."""
    answer = extract_answer(response)[:MAX_ANSWER_CHARS]
    return (
        "You grade answers to questions about a video. You do not see the video: compare the model's "
        "answer with the reference answer and judge whether it states the same thing. Wording, order "
        "and extra explanation do not matter; a different or incomplete result is wrong.\n\n"
        f"Question: {str(record.get('problem', '')).strip()}\n"
        f"Reference answer: {ground_truth(record)}\n"
        f"Model answer: {answer}\n\n"
        "Is the model answer correct? Reply with <answer>yes</answer> or <answer>no</answer>."
    )


def parse_verdict(text: str) -> float | None:
    """1.0 for yes, 0.0 for no, None when the reply says neither."""
    value = parse_bool(extract_answer(text))
    return None if value is None else float(value)


def judge_file(run_dir: str | Path, benchmark: str) -> Path:
    return Path(run_dir) / "judge" / f"{benchmark}.jsonl"


def load_verdicts(run_dir: str | Path, benchmark: str, judge_model: str) -> dict[str, float]:
    return {
        str(line["key"]): float(line["verdict"])
        for line in read_lines(judge_file(run_dir, benchmark))
        if line.get("judge_model") == judge_model and "key" in line
    }


def _prompt(processor: Any, record: dict[str, Any], text: str) -> Prompt:
    messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = processor(text=[rendered], return_tensors="pt")["input_ids"][0]
    return Prompt(record=record, input_ids=ids, vision={}, text=rendered)


class Judge:
    """Judges the open-ended answers of a run, benchmark by benchmark (the engine starts on first need)."""

    def __init__(self, model: str, engine: str, max_new_tokens: int, inference: Any, run_dir: Path) -> None:
        from vrl.models.tiny import resolve_model

        self.model_path = Path(resolve_model(model))
        self.model = str(self.model_path)
        self.engine_name = engine
        self.params = SamplingParams(n=1, temperature=0.0, max_tokens=max_new_tokens)
        self.inference = inference
        self.run_dir = run_dir
        self._engine: Any = None
        self._processor: Any = None

    def _start(self) -> None:
        from eval_harness.engines import build_engine
        from vrl.models.loading import load_processor

        self._processor = load_processor(self.model_path)
        self._engine = build_engine(
            self.engine_name, self.model_path, self.params, self.inference, self.run_dir
        )

    def verdicts(self, benchmark: str, records: list[dict], responses: dict[str, str]) -> dict[str, float]:
        """Verdicts for every open-ended record with a response (judging only those not judged yet)."""
        done = load_verdicts(self.run_dir, benchmark, self.model)
        todo = [
            r
            for r in records
            if r[KEY] in responses
            and r[KEY] not in done
            and canonical_type(r["problem_type"]) in JUDGED_TYPES
        ]
        if not todo:
            return done
        if self._engine is None:
            self._start()
        logger.info("judge %s: %d open-ended answers of %s", self.model, len(todo), benchmark)
        writer = PredictionWriter(judge_file(self.run_dir, benchmark))
        futures = [
            (r, self._engine.submit(_prompt(self._processor, r, judge_text(r, responses[r[KEY]])), 0))
            for r in todo
        ]
        for record, future in futures:
            reply = future.result().text
            verdict = parse_verdict(reply)
            writer.append(
                {
                    "key": record[KEY],
                    "problem_id": record.get("problem_id"),
                    "verdict": 0.0 if verdict is None else verdict,
                    "parsed": verdict is not None,
                    "reply": reply[:500],
                    "judge_model": self.model,
                }
            )
            done[record[KEY]] = 0.0 if verdict is None else verdict
        return done

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
