"""A lock's index state meets the guard: recorded after ``pip lock``, enforced before installing.

The ``[tool.safe-pip]`` table itself (reading, writing) is ``lockstate``'s; this module holds
the two uses that need a running guard, so that reading a lock never loads the guard.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from safe_pip.errors import AuthorityError
from safe_pip.guard.guard import Guard, Refusal, Refused
from safe_pip.index.asof import AsOf
from safe_pip.locks.lockstate import LockState, lock_state, locked_projects, write_lock_state


def record_lock(path: str, guard: Guard, as_of: AsOf | None) -> LockState:
    """After a guarded ``pip lock``: write what the guard proved into the lock at ``path``."""
    rows = []
    for entry in guard.indexes:
        head = entry.summary.head if entry.summary is not None else None
        rows.append((entry.upstream, head, guard.seen_serials(entry)))
    state = lock_state(rows, locked_projects(path), as_of)
    write_lock_state(path, state)
    return state


def enforce_lock(guard: Guard, path: str, state: LockState, *, workers: int = 8) -> None:
    """Before installing a lock: refuse (``Refused``) a view older than the lock's serials.

    pip installs a pylock's files from their URLs and reads no index page for them, so the
    guard asks for the locked projects' pages itself, with the lock's serials as memory (a
    page older than the lock is a rollback unless an authority proves its content current,
    ``index.verdict.judge``). The index's changelog must have reached the lock's global
    serial.
    """
    jobs = []
    seen: set[int] = set()
    for entry in guard.indexes:
        locked = state.index(entry.upstream)
        if locked is None:
            continue
        seen.add(id(locked))
        for name, serial in locked.projects.items():
            entry.remembered[name] = max(serial, entry.remembered.get(name, serial))
        if locked.serial is not None and entry.changelog is not None:
            try:
                head: int | None = entry.changelog.summary().head
            except AuthorityError:
                head = None  # unproven: the pages' own checks say so (UNVERIFIED, --strict)
            if head is not None and head < locked.serial:
                guard.refuse(
                    Refusal(
                        os.path.basename(path), entry.display, "STALE", head, locked.serial,
                        "the index's changelog is behind the serial the lock was made at",
                    )
                )
        jobs += [(entry, name) for name in sorted(locked.projects)]
    for locked in state.indexes:
        if id(locked) not in seen:
            guard.say(
                f"warning: {os.path.basename(path)} was made against {locked.url}, which this "
                "run does not use; its serials for that index are not checked"
            )
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="safe-pip-lock") as pool:
        for future in [pool.submit(guard.verified, entry, name) for entry, name in jobs]:
            future.result()  # re-raises Refused


def enforce_locks(guard: Guard, locks: Iterable[tuple[str, LockState]]) -> bool:
    """:func:`enforce_lock` for each lock; False once the guard refused (already reported)."""
    try:
        for path, state in locks:
            enforce_lock(guard, path, state)
    except Refused:
        return False
    return True
