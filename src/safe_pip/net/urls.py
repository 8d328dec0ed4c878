"""URL helpers that need no HTTP library: the runner uses them before pip starts, when
importing the HTTP client would delay pip."""

from __future__ import annotations

import urllib.parse


def redact(url: str) -> str:
    """A URL without credentials, as safe-pip shows and stores it (like pip's redaction).

    A URL that does not parse (an unclosed ``[``) is masked by hand: this names URLs in error
    messages, and must not fail on the bad URL it reports."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        if "@" in netloc:
            netloc = "****@" + netloc.rsplit("@", 1)[1]
        return scheme + sep + netloc + slash + path
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


def split_url(url: str) -> urllib.parse.SplitResult:
    """:func:`urllib.parse.urlsplit` with the port checked too: ``ValueError`` for a URL that
    does not parse (an unclosed ``[``) or a port that is not a number."""
    parts = urllib.parse.urlsplit(url)
    parts.port  # noqa: B018 - raises for a port that is not a number
    return parts


def proxy_url(proxy: str) -> str:
    """A proxy as pip and requests read it: ``host:port`` (no scheme) is an http:// proxy."""
    return proxy if "://" in proxy else "http://" + proxy
