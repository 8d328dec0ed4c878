"""Names: projects as PEP 503 normalises them, lock files as PEP 751 names them, and a few
names in one message line."""

from __future__ import annotations

import os

from packaging.utils import canonicalize_name


def canonical_name(name: str) -> str:
    """A project's name as PEP 503 normalises it."""
    return canonicalize_name(name)


def is_pylock(path: str, *, extras: bool = False) -> bool:
    """Whether a file is named as PEP 751 names lock files (pip decides by the name alone).

    ``extras``: ``path`` is a ``-r`` value, where ``pylock.toml[dev]`` selects extras.
    """
    name = os.path.basename(path)
    if extras:
        name = name.split("[", 1)[0]
    # PEP 751: "pylock.toml", or "pylock.<name>.toml" with one name part (no dots).
    if name == "pylock.toml":
        return True
    middle = name.removeprefix("pylock.").removesuffix(".toml")
    return len(middle) == len(name) - 12 and middle != "" and "." not in middle


def brief_list(names: tuple[str, ...], limit: int = 5) -> str:
    """The first ``limit`` names, comma-separated, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
