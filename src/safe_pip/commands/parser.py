"""The argument parser every command uses: a usage error raises ``UsageError`` (one line,
exit 2, returned by ``main``) instead of argparse printing usage and exiting the process."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from safe_pip.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors read ``LABEL: message``; the label is the
    ``prog`` (``safe-pip check``) unless given (``run``, ``serve`` and ``status`` say their
    name alone)."""

    def __init__(self, prog: str, *, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(prog=prog, **kwargs)
        self.label = prog if label is None else label

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.label}: {message}")
