"""Errors and exit codes: one base class, one table (the README has the same one)."""

from __future__ import annotations


class ExitCode:
    """Exit codes of ``safe-pip``; pip's own code is passed through when pip fails by itself.

    Plain ints, not an ``IntEnum``: ``FINDINGS`` and ``ACCESS_DENIED`` share 1, which an enum
    would fold into one member, and before Python 3.11 an ``IntEnum`` prints as its name.
    """

    OK = 0
    FINDINGS = 1
    #: The index refused the credentials (HTTP 401 or 403) or needs some: pip's own code when
    #: an index refuses it ("No matching distribution found"), which scripts around pip expect.
    ACCESS_DENIED = 1
    USAGE = 2
    REFUSED = 75  # EX_TEMPFAIL: the view of the index was stale; trying later can succeed


class SafePipError(Exception):
    """Base of every error safe-pip reports to the user as one line."""

    exit_code: int = ExitCode.USAGE


class UsageError(SafePipError):
    """Bad options or input files (exit 2)."""

    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """A file given by the user that cannot be read or parsed; names the file and line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class MalformedPage(SafePipError):
    """An index page (or its serial) could not be read; treated as a stale view."""

    exit_code = ExitCode.REFUSED

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"malformed index page {self.url}: {self.reason}"


class AuthorityError(SafePipError):
    """An authority (changelog, origin) could not be asked."""

    def __init__(self, authority: str, reason: str, *, permanent: bool) -> None:
        self.authority = authority
        self.reason = reason
        # permanent: a client error (4xx, XML-RPC fault, garbage) -> unavailable at once;
        # otherwise (timeout, 5xx, connection error) it is worth retrying within --max-wait.
        self.permanent = permanent
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.authority}: {self.reason}"


class StateError(SafePipError):
    """The state directory cannot be used."""

    exit_code = ExitCode.USAGE
