"""``safe-pip check``: can the pinned requirements be installed today, exactly as pinned?

A lock check for CI, before anything is installed: every pin in requirements files, PEP 751
``pylock.toml`` files and uv, Poetry and PDM lock files is looked up through the same guard as
``safe-pip install``, so each page is proven fresh (or waited out, then refused with exit 75)
before anything is judged. A pin that is not visible only because a cached copy is stale is
therefore never reported ``missing``: ``missing`` is said only from a page the guard accepted.

No pip is run. The indexes are those pip would use (command line, pip's configuration, and
index options inside the requirements files, by pip's rules). This module reads the command
line and the files and sets the guard up; ``locks.checker`` judges the pins.
"""

from __future__ import annotations

import os
from dataclasses import replace

from safe_pip.commands.parser import CommandParser, add_network_options, pip_args
from safe_pip.errors import ExitCode, UsageError
from safe_pip.guard.guard import ACCESS_DENIED, IndexEntry, denials
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.setup import GuardSetup, same_index, transport_of
from safe_pip.locks.checker import FindLinks, PinChecker
from safe_pip.locks.enforce import enforce_locks
from safe_pip.locks.lockfiles import lock_kind, read_lock
from safe_pip.locks.lockstate import as_of_of_locks, lock_inputs
from safe_pip.locks.pins import Pin, pins_from_requirements
from safe_pip.pip.cmdline import indexes_in_effect, parse_pip_args, resolve_settings
from safe_pip.pip.requirements import ReqLine, index_options, read_requirements
from safe_pip.report.console import emit_report, say, write_report
from safe_pip.report.findings import DEFAULT_FAIL_ON, Kind
from safe_pip.report.formats import Format


def _parser() -> CommandParser:
    p = CommandParser(
        prog="safe-pip check",
        description="Check that every pin in requirements files and lock files (pylock.toml, "
        "uv.lock, poetry.lock, pdm.lock) is on the "
        "index, exactly as pinned (version, hashes, not yanked; a lock's URLs and sizes), "
        "from a view of the index proven fresh. Exit 0 clean, 1 findings (of the --fail-on "
        "kinds), 2 bad input or the "
        "index refused the credentials, 75 stale view refused.",
        allow_abbrev=False,
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="requirements or lock file (by name or content)"
    )
    p.add_argument("--format", choices=[f.value for f in Format], default=Format.TEXT.value)
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here, not stdout")
    p.add_argument(
        "--download", action="store_true", help="fetch the pinned files and hash their bytes"
    )
    p.add_argument(
        "--fail-on",
        metavar="KIND[,KIND…]",
        action="append",
        help="the finding kinds that set exit 1 (repeatable; default: all but archived and "
        "deprecated); the others are reported and do not fail: "
        + ", ".join(kind.value for kind in Kind),
    )
    index = p.add_argument_group("pip's index options (as pip install takes them)")
    index.add_argument("-i", "--index-url", metavar="URL")
    index.add_argument("--extra-index-url", metavar="URL", action="append", default=[])
    index.add_argument("--no-index", action="store_true")
    index.add_argument("-f", "--find-links", metavar="URL", action="append", default=[])
    add_network_options(index)
    return p


def _fail_on(values: list[str] | None) -> frozenset[Kind]:
    if values is None:
        return DEFAULT_FAIL_ON
    kinds: set[Kind] = set()
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            try:
                kinds.add(Kind(name))
            except ValueError:
                known = ", ".join(kind.value for kind in Kind)
                raise UsageError(
                    f"safe-pip check: --fail-on: no finding kind {name!r} (known: {known})"
                ) from None
    return frozenset(kinds)


def main(args: list[str], options: GuardOptions) -> int:
    try:
        ns = _parser().parse_args(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    fail_on = _fail_on(ns.fail_on)
    pins: list[Pin] = []
    req_lines: list[ReqLine] = []
    pylocks: list[str] = []
    skipped = 0
    lock_extras: dict[str, None] = {}
    lock_find_links: list[str] = []
    for path in ns.files:
        kind = lock_kind(path)
        if kind is not None:
            lock = read_lock(path, kind)
            pins += lock.pins
            skipped += lock.skipped
            lock_extras.update(dict.fromkeys(lock.extra_indexes))
            lock_find_links += lock.find_links
            if kind == "pylock":
                pylocks.append(path)
        else:
            lines = read_requirements(path)
            req_lines += lines
            pins += pins_from_requirements(lines)
    # Malformed input is reported (exit 2) before pip's configuration is even read.
    settings = resolve_settings(parse_pip_args("install", pip_args(ns)), os.environ)
    in_files = index_options(req_lines)
    main_url, extras, no_index = indexes_in_effect(settings, in_files)
    # PDM's sources that may each serve a package: looked at as pip looks at extra indexes.
    extras = (*extras, *(u for u in lock_extras if not any(same_index(u, e) for e in extras)))
    lock_urls = list(dict.fromkeys(pin.index for pin in pins if pin.index))
    needs_configured = any(pin.version and pin.index is None for pin in pins)
    if not needs_configured and len(lock_urls) == 1:
        # Only one lock's index is asked: it is the main index (--changelog, --origin).
        main_url, extras, no_index = lock_urls[0], (), False
    # A lock made by ``safe-pip lock`` carries the serials it was proven against (and its
    # --as-of point): a view older than those is refused, on any machine.
    locks = lock_inputs(pylocks)
    if locks and options.as_of is None:
        options = replace(options, as_of=as_of_of_locks(locks))
    setup = GuardSetup(options, transport_of(settings), say=say)
    indexes: list[IndexEntry] = []
    if needs_configured and not no_index:
        for number, url in enumerate((main_url, *extras)):
            entry = setup.add_index(url, main=number == 0)
            if entry is not None and entry not in indexes:
                indexes.append(entry)
    configured = [main_url, *extras] if not no_index else []
    lock_indexes = {
        # A lock names its index without credentials (uv, Poetry): the command line's or
        # pip's configuration's URL for the same index carries them.
        url: setup.add_index(
            next((c for c in configured if same_index(c, url)), url),
            main=same_index(url, main_url),
        )
        for url in lock_urls
    }
    checker = PinChecker(
        setup.guard,
        indexes,
        lock_indexes,
        ns.download,
        FindLinks([*ns.find_links, *in_files.find_links, *lock_find_links]),
        say,
    )
    setup.guard.start_authorities()
    try:
        result = (
            checker.run(pins, list(ns.files)) if enforce_locks(setup.guard, locks) else None
        )
    finally:
        setup.keep(say)
        if options.report:
            write_report(options.report, setup.guard, "check")
    if result is None:
        denied = denials(setup.guard.refusals)
        if denied:
            # One line per index, said at once: every page of an index that refuses the
            # credentials is refused alike. Exit 2, not 1: the configuration is at fault, not
            # the pins (and not 75: no wait makes the index accept them).
            for refusal in setup.guard.refusals:
                if refusal.verdict != ACCESS_DENIED:
                    say(str(refusal))
            for refusal in denied:
                say(f"{refusal}; nothing was checked (exit {ExitCode.USAGE})")
            return int(ExitCode.USAGE)
        for refusal in setup.guard.refusals:
            say(str(refusal))
        say("nothing was checked: the view of the index was refused (exit 75)")
        return int(ExitCode.REFUSED)
    result.skipped = skipped
    emit_report(Format(ns.format).render(result), ns.output)
    count = len(result.findings)
    failing = sum(finding.kind in fail_on for finding in result.findings)
    summary = f"{count} findings" if count else "no findings"
    if failing != count:
        summary += f" ({failing} of the kinds that fail the check)"
    say(
        f"checked {result.pins} pins in {len(result.files)} files on "
        f"{len(result.serials)} indexes: {summary}"
        + (f"; {skipped} locked packages not from an index skipped" if skipped else "")
    )
    return int(ExitCode.FINDINGS if failing else ExitCode.OK)
