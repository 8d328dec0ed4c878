"""The guard options, shared by every command (read before pip starts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from safe_pip.index.asof import AsOf


@dataclass(frozen=True)
class GuardOptions:
    """The guard options (command line, else ``SAFE_PIP_*`` variables)."""

    changelog: str | None = None
    origin: str | None = None
    max_wait: float = 120.0
    strict: bool = False
    report: str | None = None
    as_of: AsOf | None = None  # --as-of: serve every page as it stood at this point
    #: --complete-mirror: the main index carries every file of its changelog's index (PyPI's
    #: unless --changelog names another), so a page lacking one is stale, not filtered.
    complete_mirror: bool = False
