"""``safe-pip status``: what this machine remembers of each index, and ``--forget INDEX``.

Why: the no-rollback memory and the cached journal tail live in a state directory a user
never sees (platformdirs' user state dir, or ``SAFE_PIP_STATE_DIR``). When an install is
refused as a ROLLBACK, the first questions are "what does it remember, and where?"; and when
an index was really reset (a private index rebuilt from scratch, whose serials start again),
the answer is to forget that one index, not to delete a directory by hand.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict

from safe_pip.authority.state import IndexState, StateStore
from safe_pip.commands.parser import CommandParser
from safe_pip.errors import UsageError
from safe_pip.guard.options import GuardOptions

FORMAT_VERSION = 1


def _parser() -> CommandParser:
    parser = CommandParser(
        prog="safe-pip status",
        label="status",
        description="Show what safe-pip remembers of each index (serials seen, cached journal "
        "tail) and where; --forget resets one index.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--forget",
        metavar="INDEX",
        help="forget everything remembered about this index URL (its serials and journal tail)",
    )
    parser.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def main(
    args: Sequence[str],
    options: GuardOptions,
    *,
    store: StateStore | None = None,
    out: Callable[[str], None] | None = None,
) -> int:
    """Print the state (or forget one index); 0 on success, 2 on a usage or state error."""
    del options  # status reads state only; the guard options do not apply
    ns = _parser().parse_args(list(args))
    store = store or StateStore()
    write = out or _print
    if ns.forget is not None:
        return _forget(store, ns.forget, ns.format, write)
    indexes = store.indexes()
    if ns.format == "json":
        write(json.dumps(_document(store, indexes), indent=2))
    else:
        write(_text(store, indexes))
    return 0


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _forget(store: StateStore, url: str, fmt: str, write: Callable[[str], None]) -> int:
    try:
        key = store.index_key(url)
    except ValueError as exc:
        raise UsageError(f"status --forget: {exc}") from None
    before = next((s for s in store.indexes() if s.key == key), None)
    removed = store.forget(url)
    if fmt == "json":
        document = {
            "version": FORMAT_VERSION,
            "state_dir": str(store.root),
            "forgot": key if removed else None,
            "index": asdict(before) if before is not None else None,
        }
        write(json.dumps(document, indent=2))
    elif removed:
        what = (
            f"{before.projects} project serial{'s' if before.projects != 1 else ''}"
            + (", the cached journal tail" if before.journal_head is not None else "")
            if before is not None
            else "its state"
        )
        write(f"forgot {key}: {what} (state dir {store.root})")
    else:
        write(f"nothing remembered about {key} (state dir {store.root})")
    return 0


def _document(store: StateStore, indexes: list[IndexState]) -> dict[str, object]:
    return {
        "version": FORMAT_VERSION,
        "state_dir": str(store.root),
        "indexes": [asdict(state) for state in indexes],
    }


def _text(store: StateStore, indexes: list[IndexState]) -> str:
    lines = [f"state directory: {store.root}"]
    if not indexes:
        lines.append("nothing remembered yet")
    for state in indexes:
        lines.append(state.key)
        lines.append(f"  projects remembered: {state.projects}")
        newest = "none" if state.newest_serial is None else str(state.newest_serial)
        lines.append(f"  newest serial: {newest}")
        if state.journal_head is None:
            lines.append("  journal tail cached: none")
        else:
            lines.append(
                f"  journal tail cached: serials {state.journal_low}..{state.journal_head}, "
                f"{state.journal_size} project{'s' if state.journal_size != 1 else ''} "
                "with content changes"
            )
    return "\n".join(lines)
