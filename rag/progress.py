"""Progress of long jobs (indexing, evaluation, benchmarks, uploads), told the way the reader can see it.

On a terminal: a live bar (tqdm) with the count, rate and time left. Anywhere else (CI, a log file, `nohup`):
one plain line every few seconds, so a log shows the job is alive and how far it got, without the bar's
carriage returns. A caller may also receive every update (the UI forwards them to Gradio's progress bar).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Literal, TypeVar

Style = Literal["bar", "lines", "off"]
# label, done, total (None if unknown)
Listener = Callable[[str, int, int | None], None]
T = TypeVar("T")

# How often a plain line is written when the output is not a terminal; RAG_PROGRESS_SECONDS overrides it.
DEFAULT_EVERY_S = 5.0


@dataclass
class Reporter:
    """Where the progress of a job goes. :meth:`auto` picks the bar on a terminal and lines elsewhere."""

    style: Style = "off"
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    every_s: float = DEFAULT_EVERY_S
    listener: Listener | None = None
    prefix: str = "rag"

    @classmethod
    def auto(cls, stream: IO[str] | None = None, prefix: str = "rag", listener: Listener | None = None) -> Reporter:
        stream = stream or sys.stderr
        from rag.config import Config

        every = Config.from_env().progress_seconds
        style: Style = "bar" if _is_terminal(stream) else "lines"
        return cls(style, stream, every, listener, prefix)

    @classmethod
    def of(cls, progress: bool | Reporter | None, prefix: str = "rag") -> Reporter:
        """``True``: :meth:`auto`; ``False``/``None``: silent; a Reporter: itself."""
        if isinstance(progress, Reporter):
            return progress
        return cls.auto(prefix=prefix) if progress else cls("off")

    @property
    def enabled(self) -> bool:
        return self.style != "off" or self.listener is not None

    def task(self, label: str, total: int | None, unit: str = "item") -> Task:
        return Task(self, label, total, unit)

    def iterate(self, items: Iterable[T], label: str, total: int | None = None, unit: str = "item") -> Iterator[T]:
        """Yield ``items``, counting each one."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        with self.task(label, total, unit) as task:
            for item in items:
                yield item
                task.advance()

    def say(self, line: str) -> None:
        """A one-off line (a stage starting, a summary) in the same voice."""
        if self.style != "off":
            print(f"{self.prefix}: {line}", file=self.stream, flush=True)


class Task:
    """One counted step of a job. Use as a context manager; :meth:`advance` as work completes."""

    def __init__(self, reporter: Reporter, label: str, total: int | None, unit: str) -> None:
        self.reporter = reporter
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar = None
        if reporter.style == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit=unit, file=reporter.stream, leave=False,
                             dynamic_ncols=True)

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(completed=exc[0] is None)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        now = time.monotonic()
        if self.reporter.style == "lines" and now - self._last_line >= self.reporter.every_s:
            self._last_line = now
            self.reporter.say(self.line(now))
        if self.reporter.listener is not None:
            self.reporter.listener(self.label, self.done, self.total)

    def line(self, now: float | None = None) -> str:
        """``embedding: 1,024/9,766 chunks (10%), 118 chunks/s, about 1m14s left``."""
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = f" ({100 * self.done / self.total:.0f}%)"
            left = (self.total - self.done) / rate if rate > 0 else None
            eta = f", about {_duration(left)} left" if left is not None else ""
            return f"{self.label}: {self.done:,}/{self.total:,} {self.unit}s{share}, {rate:,.1f} {self.unit}s/s{eta}"
        return f"{self.label}: {self.done:,} {self.unit}s, {rate:,.1f} {self.unit}s/s"

    def close(self, completed: bool = True) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.reporter.style == "lines" and completed and self.done:
            elapsed = time.monotonic() - self.started
            self.reporter.say(f"{self.label}: {self.done:,} {self.unit}s in {_duration(elapsed)}")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
