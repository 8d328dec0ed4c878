"""Names: projects as PEP 503 normalises them, and lock files as PEP 751 names them.

The modules that run before pip is started use these, so this one imports nothing that would
delay pip's start."""

from __future__ import annotations

import os


def canonical_name(name: str) -> str:
    """``packaging.utils.canonicalize_name``, imported on first use."""
    from packaging.utils import canonicalize_name  # here: packaging must not delay pip's start

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
