"""What a run shows as it trains: its pace over the last half minute, the time left, and
the headline losses beside a progress bar."""

from __future__ import annotations

import collections

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RecentRate:
    """Iterations per second over the last ``window`` seconds, and the time left at
    that pace: after a slow start (compiling, a cold cache) the average since the start
    would under-report for a long time."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._points: collections.deque[tuple[int, float]] = collections.deque()

    def update(self, step: int, now: float) -> None:
        self._points.append((step, now))
        while len(self._points) > 2 and now - self._points[1][1] >= self.window:
            self._points.popleft()  # keep one point at or beyond the window's start

    def per_second(self) -> float:
        if len(self._points) < 2:
            return 0.0
        (s0, t0), (s1, t1) = self._points[0], self._points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, done: int, total: int) -> float | None:
        rate = self.per_second()
        return (total - done) / rate if rate > 0 else None


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def summary(values: dict[str, float]) -> str:
    """The headline values: each loss, not its sub-terms (those are in the log); only
    each update's total when that would be more than twelve values."""
    losses = [k for k in values if "/" in k and not k.startswith("weight/")]
    depth = min((k.count("/") for k in losses), default=0)
    shown = [k for k in values if k.count("/") <= depth and not k.startswith("weight/")]
    if len(shown) > 12:
        shown = [k for k in values if k.endswith("/total")] or shown[:12]
    return "  ".join(f"{k}={values[k]:.4g}" for k in shown)


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} it/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
