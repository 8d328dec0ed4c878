"""The stale-index simulator: a real origin package index and a real caching CDN.

Both run as HTTP servers on 127.0.0.1 (random ports) so that tests, and users trying
safe-pip out, can drive real pip against an index whose CDN serves stale pages on purpose:

- :class:`Origin` keeps projects and an append-only journal (the changelog) and serves
  PEP 503/691 project pages with their serials, the JSON API, the XML-RPC changelog and,
  on another port, the files.
- :class:`CDN` sits in front of an origin with several edges, each caching every page
  variant separately and purging it after a configurable delay, or never.
- :func:`build_wheel` makes the small installable wheels the origin serves.

Only the standard library is used for the servers, and nothing here reaches beyond
127.0.0.1. This is a public API (to be documented in the README).
"""

from __future__ import annotations

from ._cdn import CDN
from ._origin import JournalEntry, Origin
from ._wheels import build_wheel, metadata_of

__all__ = ["CDN", "JournalEntry", "Origin", "build_wheel", "metadata_of"]
