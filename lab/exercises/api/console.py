"""How a drill talks to the person running it.

Guided mode prints each step and waits; auto mode only prints. The console is
injectable so a test can play the trainee: it sees the same text a person
would, answers the pauses, and may run the fault itself while the drill waits.
"""
from __future__ import annotations

import select
import sys
from typing import Protocol, TextIO


class Console(Protocol):
    interactive: bool

    def show(self, text: str) -> None:
        """Print one block of text."""

    def pause(self, prompt: str) -> None:
        """Wait until the trainee is ready (Enter); returns at once when not interactive."""

    def poll(self) -> str | None:
        """A line the trainee typed since the last call, or None; never blocks."""


class TerminalConsole:
    """The real terminal: pauses read stdin, poll uses select() so watching never blocks."""

    def __init__(self, interactive: bool, out: TextIO | None = None, inp: TextIO | None = None) -> None:
        self.interactive = interactive
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin

    def show(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def pause(self, prompt: str) -> None:
        if not self.interactive:
            return
        self.out.write(f"{prompt} ")
        self.out.flush()
        try:
            self.inp.readline()
        except (OSError, ValueError):
            pass

    def poll(self) -> str | None:
        if not self.interactive:
            return None
        try:
            ready, _, _ = select.select([self.inp], [], [], 0)
        except (OSError, ValueError, TypeError):
            return None
        if not ready:
            return None
        line = self.inp.readline()
        return line.strip() if line else None


class ScriptedConsole:
    """A console for tests: records what was shown, answers pauses from a script.

    ``on_show(text)`` is called for every block shown, so a test can react to
    "waiting for you" by injecting the fault itself, as a trainee would.
    """

    def __init__(self, answers: list[str] | None = None, on_show=None) -> None:
        self.interactive = True
        self.answers = list(answers or [])
        self.shown: list[str] = []
        self.pauses: list[str] = []
        self.on_show = on_show

    def show(self, text: str) -> None:
        self.shown.append(text)
        if self.on_show:
            self.on_show(text)

    def pause(self, prompt: str) -> None:
        self.pauses.append(prompt)

    def poll(self) -> str | None:
        return self.answers.pop(0) if self.answers else None

    @property
    def text(self) -> str:
        return "\n".join(self.shown)
