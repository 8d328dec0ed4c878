"""Index project pages: a model, pure parsers (HTML, PEP 691 JSON) and renderers.

Parsing is kept apart from transport: callers pass the body, Content-Type, page URL and
headers they received. See DESIGN.md for where serials live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NewType

Serial = NewType("Serial", int)

#: Where a serial was read from.
SerialSource = Literal["header", "json-meta", "html-comment"]


@dataclass(frozen=True)
class DistFile:
    """One file listed on a project page."""

    filename: str
    url: str  # absolute, fragment removed
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    # PEP 658/714: None (not advertised), True (available, no hashes) or a hash mapping.
    core_metadata: Mapping[str, str] | bool | None = None
    gpg_sig: bool | None = None
    upload_time: str | None = None  # PEP 700, ISO 8601 as the index gave it
    size: int | None = None  # PEP 700


@dataclass(frozen=True)
class ProjectPage:
    """A parsed project page (``/simple/<project>/``)."""

    name: str  # as the page gives it (JSON "name"); else the last URL path segment
    files: tuple[DistFile, ...]
    serials: Mapping[SerialSource, int] = field(default_factory=dict)
    versions: tuple[str, ...] | None = None  # PEP 700 (JSON API 1.1+)
    api_version: str | None = None
    fmt: Literal["json", "html"] = "json"
