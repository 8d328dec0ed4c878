"""Command line: ``safe-pip [guard options] COMMAND [pip's arguments…]``.

One function (``main``) maps every error to a message and an exit code; the table is in the
README.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from safe_pip import __version__
from safe_pip.commands.parser import CommandParser
from safe_pip.errors import SafePipError, UsageError
from safe_pip.guard.options import GuardOptions
from safe_pip.pip.cmdline import GUARDED_COMMANDS
from safe_pip.report.console import say

DEFAULT_MAX_WAIT = 120.0

#: safe-pip's own commands, each a module with ``main(args, options) -> int`` that parses its
#: own arguments (``prog="safe-pip NAME"``) and shares the guard options.
TOOL_COMMANDS = {
    "check": "safe_pip.commands.check",
    "mirror-check": "safe_pip.commands.mirror_check",
    "status": "safe_pip.commands.status",
    "run": "safe_pip.commands.run",
    "serve": "safe_pip.commands.serve",
    "demo": "safe_pip.commands.demo",
    "wait": "safe_pip.commands.wait",
}


def available_tool_commands() -> list[str]:
    return [name for name, module in TOOL_COMMANDS.items() if importlib.util.find_spec(module)]


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="safe-pip",
        label="",
        description=(
            "Run pip with every index page proven fresh against the index's serial; stale "
            "views are waited out, then refused with nothing installed (exit 75)."
        ),
        epilog="Guard options go before the pip command: safe-pip --max-wait 30 install -r r.txt",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"safe-pip {__version__}")
    parser.add_argument(
        "--changelog",
        metavar="URL",
        help="the main index's XML-RPC changelog endpoint [SAFE_PIP_CHANGELOG; "
        "default for PyPI: its own]",
    )
    parser.add_argument(
        "--origin",
        metavar="URL",
        help="the main simple index reached without the cache, used as an authority "
        "[SAFE_PIP_ORIGIN]",
    )
    parser.add_argument(
        "--complete-mirror",
        action="store_true",
        default=None,
        help="the main index carries every file of its changelog's index (PyPI's unless "
        "--changelog names another): its pages without serials are judged by what they "
        "list [SAFE_PIP_COMPLETE_MIRROR=1]",
    )
    parser.add_argument(
        "--max-wait",
        metavar="SECONDS",
        help=f"how long to wait out a stale view [SAFE_PIP_MAX_WAIT; {DEFAULT_MAX_WAIT:g}]",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="refuse anything not proven fresh [SAFE_PIP_STRICT=1]",
    )
    parser.add_argument(
        "--as-of",
        metavar="SERIAL|DATETIME",
        help="serve every index page as it stood at this journal serial or UTC moment "
        "[SAFE_PIP_AS_OF]",
    )
    parser.add_argument(
        "--guard-report", metavar="FILE", help="write a JSON record of every page checked"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the guard's work")
    commands = [*GUARDED_COMMANDS, *available_tool_commands()]
    parser.add_argument(
        "command", choices=commands, metavar="COMMAND", help="one of: " + ", ".join(commands)
    )
    parser.add_argument(
        "pip_args", nargs=argparse.REMAINDER, help="pip's own arguments, or the command's"
    )
    return parser


def configure_logging(verbose: bool) -> None:
    """safe-pip's own log lines on stderr (``-v``: the guard's work too)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="safe-pip: %(message)s"
    )


def _max_wait(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"{where}: must be a finite number of seconds >= 0, not {text!r}")
    return value


def _flag(text: str, where: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise UsageError(f"{where}: expected 1 or 0, not {text!r}")


def guard_options(ns: argparse.Namespace, env: Mapping[str, str]) -> GuardOptions:
    """Guard options from the command line, else from SAFE_PIP_* variables."""
    if ns.max_wait is not None:
        max_wait = _max_wait(ns.max_wait, "--max-wait")
    elif "SAFE_PIP_MAX_WAIT" in env:
        max_wait = _max_wait(env["SAFE_PIP_MAX_WAIT"], "SAFE_PIP_MAX_WAIT")
    else:
        max_wait = DEFAULT_MAX_WAIT
    strict = ns.strict if ns.strict else _flag(env.get("SAFE_PIP_STRICT", ""), "SAFE_PIP_STRICT")
    as_of = None
    if ns.as_of or env.get("SAFE_PIP_AS_OF", "").strip():
        # Only when asked: it loads the page modules, which run loads after its command starts.
        from safe_pip.index.asof import parse_as_of

        as_of = (
            parse_as_of(ns.as_of, "--as-of")
            if ns.as_of
            else parse_as_of(env["SAFE_PIP_AS_OF"], "SAFE_PIP_AS_OF")
        )
    return GuardOptions(
        changelog=ns.changelog or env.get("SAFE_PIP_CHANGELOG") or None,
        origin=ns.origin or env.get("SAFE_PIP_ORIGIN") or None,
        max_wait=max_wait,
        strict=strict,
        report=ns.guard_report,
        as_of=as_of,
        complete_mirror=bool(ns.complete_mirror)
        or _flag(env.get("SAFE_PIP_COMPLETE_MIRROR", ""), "SAFE_PIP_COMPLETE_MIRROR"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run safe-pip; returns the exit code (see the README's table)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        ns = _parser().parse_args(args)
        options = guard_options(ns, os.environ)
        rest = list(ns.pip_args)
        configure_logging(ns.verbose)
        if ns.command in TOOL_COMMANDS:
            # Lazy dispatch: a command's module (and what it needs) loads only when it runs.
            module = importlib.import_module(TOOL_COMMANDS[ns.command])
            return int(module.main(rest, options))
        if rest[:1] == ["--"]:
            rest = rest[1:]
        # Here, not at the top: ``run`` and the other commands start sooner without the
        # runner's modules (lock files, --as-of).
        from safe_pip.commands.install import run

        return run(options, ns.command, rest)
    except SafePipError as exc:
        say(f"error: {exc}")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        say("interrupted")
        return 130


def entry_point() -> None:
    code = main()
    # Shutdown's last collections would search every object pip's parser and the guard made
    # (about 40 ms, as long as the guard's whole stop); frozen, they are freed without a search.
    gc.freeze()
    sys.exit(code)
