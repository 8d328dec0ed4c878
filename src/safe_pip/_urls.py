"""URL helpers that need no HTTP library: the runner uses them before pip starts, when
importing the HTTP client would delay pip (issue 7)."""

from __future__ import annotations

import urllib.parse


def redact(url: str) -> str:
    """A URL without credentials, as safe-pip shows and stores it (like pip's redaction)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"****@{host}"))


def strip_credentials(url: str) -> str:
    """A URL with its user-info removed entirely (for keys and lock files)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def credentials_of(url: str) -> tuple[str, str] | None:
    """The user and password in a URL, if any (pip sends index credentials to that host)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    return (
        urllib.parse.unquote(parts.username),
        urllib.parse.unquote(parts.password or ""),
    )


def netloc_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def split_url(url: str) -> tuple[str, str] | None:
    """A URL's scheme (lower case) and host, or ``None`` if it does not parse (a bad port,
    an unclosed ``[``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return None
    return parts.scheme.lower(), parts.hostname or ""
