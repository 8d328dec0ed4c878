"""Project names as PEP 503 normalises them, with packaging imported only when a name is
normalised: the modules the runner reads before pip starts use this (issue 7)."""

from __future__ import annotations


def canonical_name(name: str) -> str:
    """``packaging.utils.canonicalize_name``, imported on first use (about 10 ms)."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)
