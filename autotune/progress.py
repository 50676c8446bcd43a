"""What the user sees while a study runs: trial n of N, best so far, the current phase.

`RichProgress` draws a live bar (one line per finished trial above it); `QuietProgress`
draws nothing, for scripts and CI (`--quiet`). The study talks only to `Progress`.
"""

from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichBar

#: a hook told the phase a measurement enters ("warm-up", "measuring", ...)
PhaseCallback = Callable[[str], None]


def notify(on_phase: PhaseCallback | None, phase: str) -> None:
    """Tell `on_phase`, when there is one, that `phase` begins."""
    if on_phase is not None:
        on_phase(phase)


class Progress:
    """The progress interface; this base draws nothing (the quiet display)."""

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop drawing."""

    def begin(self, title: str, total: int) -> None:
        """A run of `total` steps starts (the trials, or a round of the racing)."""

    def step(self, label: str) -> None:
        """The next step starts: `label` names the trial or configuration."""

    def phase(self, text: str) -> None:
        """The current step moved on (starting server, warm-up, measuring, accuracy)."""

    def done(self, line: str, best: str | None = None) -> None:
        """The current step ended: `line` summarises it, `best` is the best so far."""

    def note(self, line: str) -> None:
        """A line for the user outside any step (e.g. that the host is busy)."""


QuietProgress = Progress


class RichProgress(Progress):
    """A live bar with the step, its phase and the best so far."""

    def __init__(self, console: Console | None = None) -> None:
        self._bar = RichBar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("[green]{task.fields[best]}"),
                            console=console, transient=True)
        self._task: TaskID | None = None
        self._label = ""

    def __enter__(self) -> "RichProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def begin(self, title: str, total: int) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._bar.console.rule(title)
        self._task = self._bar.add_task(title, total=total, best="")

    def step(self, label: str) -> None:
        self._label = label
        self.phase("starting")

    def phase(self, text: str) -> None:
        if self._task is not None:
            self._bar.update(self._task, description=f"{self._label} [cyan]{text}")

    def note(self, line: str) -> None:
        self._bar.console.print(line)

    def done(self, line: str, best: str | None = None) -> None:
        self._bar.console.print(line)
        if self._task is not None:
            self._bar.update(self._task, advance=1, best=f"best {best}" if best else "")


def make_progress(quiet: bool) -> Progress:
    """The display for `--quiet` (none) or an interactive run."""
    return QuietProgress() if quiet else RichProgress()
