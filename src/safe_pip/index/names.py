"""Names: projects as PEP 503 normalises them (packaging imported only when a name is
normalised), and lock files as PEP 751 names them. The modules the runner reads before pip
starts use these (issue 7)."""

from __future__ import annotations

import os


def canonical_name(name: str) -> str:
    """``packaging.utils.canonicalize_name``, imported on first use (about 10 ms)."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def is_pylock(path: str, *, extras: bool = False) -> bool:
    """Whether a file is named as PEP 751 names lock files (pip decides by the name alone).

    ``extras``: ``path`` is a ``-r`` value, where ``pylock.toml[dev]`` selects extras.
    """
    name = os.path.basename(path)
    if extras:
        name = name.split("[", 1)[0]
    # PEP 751: "pylock.toml", or "pylock.<name>.toml" with one name part (no dots); string
    # tests, not a pattern, as re is not loaded before pip starts (issue 7).
    if name == "pylock.toml":
        return True
    middle = name.removeprefix("pylock.").removesuffix(".toml")
    return len(middle) == len(name) - 12 and middle != "" and "." not in middle
