"""One exit-code convention for every command (README, "Exit codes").

0   the command did what it was asked
1   it started and failed (a step, a drill, a provider command); the message
    says what state it left and what to run next
2   it refused before changing anything: bad input (topology, settings, names),
    wrong order (`invoke ssh` before `invoke up`), or a prerequisite missing on
    this host for the chosen provider
130 interrupted by Ctrl-C (SIGINT, 128 + 2 as shells report it); the message
    names the interrupted command and the one to run next
"""
from __future__ import annotations

OK = 0
FAILED = 1
REFUSED = 2
INTERRUPTED = 130


class Refusal(Exception):
    """Base of errors raised before anything was changed; they exit with :data:`REFUSED`."""


def code_for(error: BaseException) -> int:
    """The exit code of an error that ends a command."""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    return REFUSED if isinstance(error, Refusal) else FAILED
