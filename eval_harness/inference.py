"""The asynchronous pipeline of one task: loader threads → bounded queue → engine → scorer/writer thread.

Loader threads read frames (cache or decode) and run the processor, staying at most ``queue_size``
prompts ahead; the main thread keeps up to ``max_in_flight`` requests in the engine; a writer thread
scores each finished answer with the training reward and hands it to the sink (which appends it to the
prediction file) while the engine generates the next ones. A sample whose media is missing or broken,
or whose prompt is too long, reaches the sink with an error instead of an answer: it never stops the
task. Anything else (an engine failure, a cache built with another spec) stops the pipeline and is
raised.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from cache_builder.errors import MediaError
from eval_harness.records import KEY
from vrl.batch import Prompt
from vrl.data.media import Media, MediaSource
from vrl.data.processing import PromptBuilder
from vrl.log import get_logger
from vrl.rollout.base import Completion

logger = get_logger(__name__)

#: how often blocked threads look at the stop flag
POLL_S = 0.2


class SampleError(Exception):
    """A sample that cannot run (recorded in its prediction line, the task goes on)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _RecordingSource(MediaSource):
    """A MediaSource that remembers why the last load failed (PromptBuilder only counts it)."""

    last_error: MediaError | None = None

    def load(self, record: dict[str, Any]) -> Media | None:
        try:
            return super().load(record)
        except MediaError as e:
            self.last_error = e
            raise

    def load_all(self, record: dict[str, Any]) -> list[Media]:
        try:
            return super().load_all(record)
        except MediaError as e:
            self.last_error = e
            raise


class PromptMaker:
    """Record → :class:`Prompt` (media loaded once, processor run); one per loader thread."""

    def __init__(
        self,
        processor: Any,
        media: tuple[Any, ...],
        style: str,
        max_prompt_length: int,
        render: Callable[[dict[str, Any], str], str] | None,
    ) -> None:
        # (mode, cache_dirs, video_spec, image_spec[, allow_outside_root]): MediaSource's arguments
        self.source = _RecordingSource(*media)
        # extra media: a record's own image after its video (Video-MMMU's videommmu_with_image.json)
        self.builder = PromptBuilder(
            processor, self.source, style, max_prompt_length, render=render, extra_media=True
        )

    def prepare(self, record: dict[str, Any]) -> Prompt:
        self.source.last_error = None
        before = self.builder.skipped.copy()
        prompt = self.builder.build(record, uid=str(record.get(KEY, "")))
        if prompt is not None:
            return prompt
        if self.source.last_error is not None:
            raise SampleError(f"media_{self.source.last_error.reason}", str(self.source.last_error))
        reasons = list(self.builder.skipped - before) or ["skipped"]
        raise SampleError(reasons[0], f"prompt not built ({reasons[0]}): see max_prompt_length")


@dataclass
class Outcome:
    """What the sink receives for one sample."""

    record: dict[str, Any]
    completion: Completion | None
    error: SampleError | None
    prompt_tokens: int
    seconds: float
    """Wall time from the start of loading to the end of generation."""


@dataclass
class PipelineStats:
    samples: int
    errors: int
    seconds: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def sample_seed(seed: int, key: str) -> int:
    """Per-sample sampling seed: the same for a sample whatever shard runs it."""
    return zlib.crc32(f"{seed}:{key}".encode()) % (2**31)


class _Stop(Exception):
    pass


class Pipeline:
    """Runs ``records`` through loaders, ``engine`` and ``sink`` (called on the writer thread, in finish order)."""

    def __init__(
        self,
        make_prompts: Callable[[], PromptMaker],
        engine: Any,
        sink: Callable[[Outcome], None],
        *,
        seed: int = 0,
        num_loaders: int = 2,
        queue_size: int = 8,
        max_in_flight: int = 16,
        progress: bool = True,
        desc: str = "eval",
    ) -> None:
        self.make_prompts = make_prompts
        self.engine = engine
        self.sink = sink
        self.seed = seed
        self.num_loaders = num_loaders
        self.queue_size = queue_size
        self.max_in_flight = max_in_flight
        self.progress = progress
        self.desc = desc
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._lock = threading.Lock()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
        self._stop.set()

    def _put(self, q: queue.Queue, item: Any) -> None:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue
        raise _Stop

    def _get(self, q: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        raise _Stop

    def _loader(self, todo: queue.Queue, ready: queue.Queue, results: queue.Queue) -> None:
        try:
            maker = self.make_prompts()
            while not self._stop.is_set():
                try:
                    record = todo.get_nowait()
                except queue.Empty:
                    return
                start = time.monotonic()
                try:
                    prompt = maker.prepare(record)
                except SampleError as e:
                    results.put(Outcome(record, None, e, 0, time.monotonic() - start))
                    continue
                self._put(ready, (record, prompt, start))
        except _Stop:
            return
        except BaseException as e:  # re-raised by run() in the calling thread
            self._fail(e)

    def _writer(self, total: int, results: queue.Queue, bar: tqdm, sink: Callable[[Outcome], None]) -> None:
        try:
            for _ in range(total):
                outcome = self._get(results)
                if isinstance(outcome, BaseException):
                    raise outcome
                sink(outcome)
                bar.update(1)
        except _Stop:
            return
        except BaseException as e:  # re-raised by run() in the calling thread
            self._fail(e)

    def run(self, records: list[dict[str, Any]]) -> PipelineStats:
        """Process every record; returns when each has reached the sink (or raises the first failure)."""
        start = time.monotonic()
        todo: queue.Queue = queue.Queue()
        for record in records:
            todo.put(record)
        ready: queue.Queue = queue.Queue(maxsize=self.queue_size)
        results: queue.Queue = queue.Queue()
        counting = _CountingSink(self.sink)
        bar = tqdm(
            total=len(records),
            desc=self.desc,
            unit="sample",
            disable=not self.progress,
            smoothing=0.1,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,  # a batch log gets a line every 30 s
        )
        loaders = [
            threading.Thread(
                target=self._loader, args=(todo, ready, results), name=f"loader-{i}", daemon=True
            )
            for i in range(min(self.num_loaders, max(1, len(records))))
        ]
        writer = threading.Thread(
            target=self._writer, args=(len(records), results, bar, counting), name="writer", daemon=True
        )
        for t in (*loaders, writer):
            t.start()
        try:
            self._dispatch_until_done(loaders, ready, results, writer)
        finally:
            if self._failure is not None:
                self._stop.set()
            writer.join()
            for t in loaders:
                t.join()
            bar.close()
        if self._failure is not None:
            raise self._failure
        return PipelineStats(len(records), counting.errors, time.monotonic() - start)

    def _dispatch_until_done(
        self,
        loaders: list[threading.Thread],
        ready: queue.Queue,
        results: queue.Queue,
        writer: threading.Thread,
    ) -> None:
        """Submit prompts as loaders produce them until loaders are done and the ready queue is empty."""
        slots = threading.Semaphore(self.max_in_flight)
        while not self._stop.is_set():
            try:
                record, prompt, start = ready.get(timeout=POLL_S)
            except queue.Empty:
                if not any(t.is_alive() for t in loaders) and ready.empty():
                    break
                continue
            while not slots.acquire(timeout=POLL_S):
                if self._stop.is_set():
                    return
            tokens = int(prompt.input_ids.numel())
            future = self.engine.submit(prompt, sample_seed(self.seed, str(record.get(KEY, ""))))

            def done(fut: Any, record: dict = record, tokens: int = tokens, start: float = start) -> None:
                slots.release()
                exc = fut.exception()
                results.put(
                    exc
                    if exc is not None
                    else Outcome(record, fut.result(), None, tokens, time.monotonic() - start)
                )

            future.add_done_callback(done)
            del prompt  # the engine holds it until generated; do not keep frames alive here
        while writer.is_alive() and not self._stop.is_set():
            writer.join(timeout=POLL_S)


class _CountingSink:
    def __init__(self, sink: Callable[[Outcome], None]) -> None:
        self.sink = sink
        self.errors = 0

    def __call__(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            self.errors += 1
        self.sink(outcome)
