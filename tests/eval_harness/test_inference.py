"""The asynchronous pipeline with a fake engine: every sample reaches the sink once, media errors are
recorded and never stop it, requests overlap up to max_in_flight, and engine failures are raised."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
import torch

from eval_harness.inference import Pipeline, SampleError, sample_seed
from eval_harness.records import KEY
from vrl.batch import Prompt
from vrl.rollout.base import Completion


class FakeMaker:
    def prepare(self, record):
        if record.get("missing"):
            raise SampleError("media_missing", f"media file not found: {record[KEY]}.mp4")
        if record.get("fatal"):
            raise RuntimeError("cache built with another spec")
        return Prompt(record=record, input_ids=torch.arange(5), vision={}, text=record[KEY])


class FakeEngine:
    """Answers each prompt after ``delay`` seconds on its own thread; counts requests in flight."""

    def __init__(self, delay=0.02, fail_on=None):
        self.delay = delay
        self.fail_on = fail_on
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def submit(self, prompt, seed):
        future = Future()
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

        def answer():
            time.sleep(self.delay)
            with self.lock:
                self.in_flight -= 1
            if prompt.text == self.fail_on:
                future.set_exception(RuntimeError("engine died"))
            else:
                future.set_result(Completion(token_ids=[1, 2], text=f"answer {prompt.text}", truncated=False))

        threading.Thread(target=answer, daemon=True).start()
        return future


def _records(n, **flags):
    return [{KEY: str(i), **({k: True for k, idx in flags.items() if i in idx})} for i in range(n)]


def _pipeline(engine, sink, **kw):
    return Pipeline(FakeMaker, engine, sink, progress=False, **{"max_in_flight": 4, **kw})


def test_every_sample_reaches_the_sink_once_with_errors_recorded():
    outcomes = []
    engine = FakeEngine()
    stats = _pipeline(engine, outcomes.append).run(_records(30, missing={3, 17}))
    assert sorted(int(o.record[KEY]) for o in outcomes) == list(range(30))
    errors = {o.record[KEY]: o.error for o in outcomes if o.error is not None}
    assert set(errors) == {"3", "17"} and errors["3"].reason == "media_missing"
    assert all(o.completion.text == f"answer {o.record[KEY]}" for o in outcomes if o.error is None)
    assert (stats.samples, stats.errors) == (30, 2)
    assert 1 < engine.max_in_flight <= 4  # requests overlap, bounded


def test_engine_failure_is_raised():
    with pytest.raises(RuntimeError, match="engine died"):
        _pipeline(FakeEngine(fail_on="5"), lambda o: None).run(_records(20))


def test_loader_failure_that_is_not_a_sample_error_is_raised():
    with pytest.raises(RuntimeError, match="another spec"):
        _pipeline(FakeEngine(), lambda o: None).run(_records(10, fatal={4}))


def test_sink_failure_is_raised():
    def sink(outcome):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _pipeline(FakeEngine(), sink).run(_records(5))


def test_empty_and_seeds():
    assert _pipeline(FakeEngine(), lambda o: None).run([]).samples == 0
    assert sample_seed(0, "a") == sample_seed(0, "a") != sample_seed(1, "a")
