"""The argument parser every command uses: a usage error raises ``UsageError`` (one line,
exit 2, returned by ``main``) instead of argparse printing usage and exiting the process."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from safe_pip.errors import UsageError


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors read ``LABEL: message``; the label is the
    ``prog`` (``safe-pip check``) unless given (``run``, ``serve`` and ``status`` say their
    name alone; the top-level parser, no label, says the message alone)."""

    def __init__(self, prog: str, *, label: str | None = None, **kwargs: Any) -> None:
        super().__init__(prog=prog, **kwargs)
        self.label = prog if label is None else label

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.label}: {message}" if self.label else message)


def add_network_options(group: argparse._ArgumentGroup) -> None:
    """pip's network options, last in a command's group of pip options (``pip_args`` gives
    them back as pip's argv)."""
    group.add_argument("--isolated", action="store_true", help="ignore pip's configuration")
    for name in ("--timeout", "--cert", "--client-cert", "--proxy"):
        group.add_argument(name, metavar="VALUE")
    group.add_argument("--trusted-host", metavar="HOST", action="append", default=[])


def pip_args(ns: argparse.Namespace) -> list[str]:
    """The index and network options a command took (those of pip's it offers), as pip's own
    argv, for ``parse_pip_args``."""
    args = [
        f"--{name.replace('_', '-')}={getattr(ns, name)}"
        for name in ("index_url", "timeout", "cert", "client_cert", "proxy")
        if getattr(ns, name, None) is not None
    ]
    args += [f"--extra-index-url={u}" for u in getattr(ns, "extra_index_url", [])]
    args += [f"--trusted-host={h}" for h in ns.trusted_host]
    args += [f"--find-links={u}" for u in getattr(ns, "find_links", [])]
    args += ["--no-index"] * getattr(ns, "no_index", False)
    return args + ["--isolated"] * ns.isolated
