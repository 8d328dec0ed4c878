"""What safe-pip says while it runs: one line at a time on stderr, the refusals of access, and
the guard's JSON report (``--guard-report``)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from safe_pip import __version__
from safe_pip.errors import ExitCode, UsageError
from safe_pip.net.urls import strip_credentials

if TYPE_CHECKING:
    from safe_pip.guard.guard import Guard

_SAY_LOCK = threading.Lock()

#: The version of the ``--guard-report`` document's layout.
REPORT_VERSION = 1


def say(line: str, *, prefix: str = "safe-pip") -> None:
    """One line on stderr, whole: guard threads speak at once (print writes the text and the
    newline separately, so two threads' lines could run together)."""
    with _SAY_LOCK:
        sys.stderr.write(f"{prefix}: {line}\n")
        sys.stderr.flush()


def say_denials(guard: Guard, out: Callable[[str], None], outcome: str) -> bool:
    """Say the indexes that refused the guard's credentials (401, 403), one line each, and
    any other refusal; False when there were none, so the view's refusal is said instead.

    Not a stale view: the credentials are what to fix, and pip's own exit code for an index
    that refuses it is what scripts around pip expect."""
    # The guard's module is heavy and this one is loaded before pip starts.
    from safe_pip.guard.guard import ACCESS_DENIED, denials

    denied = denials(guard.refusals)
    if not denied:
        return False
    for refusal in guard.refusals:
        if refusal.verdict != ACCESS_DENIED:
            out(str(refusal))
    for refusal in denied:
        out(f"{refusal}; {outcome} (exit {ExitCode.ACCESS_DENIED})")
    return True


def write_report(path: str, guard: Guard, command: str) -> None:
    """Write the guard's record of this run to ``path`` as JSON, whole or not at all."""
    # The --as-of view's module is heavy (the changelog client) and this one is loaded
    # before pip starts.
    from safe_pip.guard.asofview import AsOfView

    document: dict[str, object] = {
        "version": REPORT_VERSION,
        "tool": f"safe-pip {__version__}",
        "command": command,
    }
    document["indexes"] = [
        {
            "url": e.display,
            "changelog": e.changelog_url and strip_credentials(e.changelog_url),
            "origin": e.origin and strip_credentials(e.origin),
            "changelog_error": e.summary_error,
        }
        for e in guard.indexes
    ]
    document.update(guard.report())
    if isinstance(guard.page_filter, AsOfView):
        document["as_of"] = guard.page_filter.report()
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write the guard report {path}: {exc.strerror}") from exc


def emit_report(report: str, output: str | None) -> None:
    """A rendered report (check, mirror-check) on stdout, or written to ``output``."""
    if output is None:
        print(report, end="", flush=True)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(report)
    except OSError as exc:
        raise UsageError(f"cannot write the report {output}: {exc.strerror}") from None
