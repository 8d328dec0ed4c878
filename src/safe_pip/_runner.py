"""The runner: the one place that starts and stops pip.

pip runs as a subprocess in its own process group, pointed at the loopback guard. When the
guard refuses a view it holds pip's request unanswered and the runner ends pip's whole group
(build-isolation pips included) before anything is installed: an error answer would not stop
pip, which reads a failed page as an empty one (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from safe_pip._changelog import ChangelogAuthority, ChangelogClient
from safe_pip._errors import ExitCode, SafePipError, UsageError
from safe_pip._guard import Guard, IndexEntry, Refusal
from safe_pip._http import TransportSettings, make_session, strip_credentials
from safe_pip._pipcmd import (
    PipCommand,
    config_flag,
    config_list,
    config_value,
    default_changelog_url,
    default_index_url,
    parse_pip_args,
    pip_config,
    target_python,
)
from safe_pip._proxy import Proxy
from safe_pip._reqfile import rewrite_for_guard
from safe_pip._state import StateStore

#: Seconds pip may wait on the guard beyond --max-wait: the guard waits out stale views inside
#: pip's request, so pip's own --timeout (15 s by default) must not cut that short (pip would
#: read an abandoned page as an empty one).
PIP_TIMEOUT_MARGIN = 60.0


@dataclass(frozen=True)
class GuardOptions:
    changelog: str | None = None
    origin: str | None = None
    max_wait: float = 120.0
    strict: bool = False
    report: str | None = None


def say(line: str) -> None:
    print(f"safe-pip: {line}", file=sys.stderr, flush=True)


def _same_index(a: str, b: str) -> bool:
    return strip_credentials(a).rstrip("/").lower() == strip_credentials(b).rstrip("/").lower()


class _PipProcess:
    """pip in its own process group, ended as a whole on refusal or interrupt."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.refused = threading.Event()
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(list(argv), env=dict(env), start_new_session=True)

    def end(self, sig: int = signal.SIGTERM) -> None:
        with self._lock:
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def refuse(self, _refusal: Refusal) -> None:
        self.refused.set()
        self.end()

    def wait(self) -> int:
        while True:
            try:
                return self.proc.wait()
            except KeyboardInterrupt:
                self.end(signal.SIGINT)


def run(
    options: GuardOptions,
    command: str,
    pip_args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    store: StateStore | None = None,
    out: Callable[[str], None] = say,
) -> int:
    env = dict(os.environ if env is None else env)
    cmd = parse_pip_args(command, pip_args)
    pip = [sys.executable, "-m", "pip"]
    if cmd.has("--help") or cmd.has("--version"):
        return subprocess.call([*pip, command, *pip_args], env=env)

    isolated = cmd.has("--isolated")
    python = target_python(cmd, env)
    config = {} if isolated else pip_config(python, env)

    def value(key: str) -> str | None:
        return config_value(config, command, key)

    timeout_text = cmd.last("--timeout") or value("timeout") or "15"
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise UsageError(f"pip option --timeout: not a number: {timeout_text!r}") from None
    transport = TransportSettings(
        timeout=timeout,
        cert=cmd.last("--cert") or value("cert") or env.get("REQUESTS_CA_BUNDLE"),
        client_cert=cmd.last("--client-cert") or value("client-cert"),
        proxy=cmd.last("--proxy") or value("proxy"),
        trusted_hosts=tuple(
            config_list(config, command, "trusted-host") + cmd.options.get("--trusted-host", [])
        ),
    )
    no_index = cmd.has("--no-index") or config_flag(config, command, "no-index")
    index_url = cmd.last("--index-url") or value("index-url") or default_index_url()
    extras = config_list(config, command, "extra-index-url") + cmd.options.get(
        "--extra-index-url", []
    )

    store = store or StateStore()
    session = make_session(transport)
    holder: dict[str, _PipProcess] = {}

    def on_refuse(refusal: Refusal) -> None:
        proc = holder.get("pip")
        if proc is not None:
            proc.refuse(refusal)

    guard = Guard(
        session, transport, max_wait=options.max_wait, strict=options.strict,
        on_refuse=on_refuse, say=out,
    )
    proxy = Proxy(guard)

    def guarded(url: str, *, main: bool = False) -> str:
        """The proxy URL pip is given for one index (local file:// indexes are left alone)."""
        if not url.startswith(("http://", "https://")):
            return url
        changelog_url = options.changelog if main else None
        if changelog_url is None and _same_index(url, default_index_url()):
            changelog_url = default_changelog_url()
        authority = None
        if changelog_url:
            client = ChangelogClient(
                changelog_url, session, timeout=timeout,
                on_call=lambda rec: guard.authority_calls.append(
                    {"authority": "changelog", **rec.__dict__}
                ),
            )
            authority = ChangelogAuthority(client, store, url, max_wait=options.max_wait)
        entry = guard.add_index(
            url,
            changelog=authority,
            changelog_url=changelog_url,
            origin=options.origin if main else None,
            remembered=store.remembered(url),
        )
        return guard.index_url(entry)

    workdir = tempfile.TemporaryDirectory(prefix="safe-pip-")
    try:
        argv, pip_env = _pip_command(
            cmd, guarded, index_url, extras, no_index, isolated, Path(workdir.name)
        )
        argv += ["--timeout", f"{options.max_wait + timeout + PIP_TIMEOUT_MARGIN:g}"]
        # pip's self version check reads the "pip" page after installing; a stale copy of it
        # is no reason to refuse an install that already happened.
        argv.append("--disable-pip-version-check")
        child_env = dict(env)
        child_env.update(pip_env)
        no_proxy = [p for p in child_env.get("NO_PROXY", "").split(",") if p]
        child_env["NO_PROXY"] = ",".join([*no_proxy, "127.0.0.1", "localhost"])
        child_env["no_proxy"] = child_env["NO_PROXY"]
        child_env["PIP_PROXY"] = ""
        proxy.start()
        guard.start_authorities()
        general = ["--python", python] if python and not cmd.has("--python") else []
        process = _PipProcess([*pip, *general, command, *argv], child_env)
        holder["pip"] = process
        code = process.wait()
    finally:
        proxy.stop()
        workdir.cleanup()
        _remember(store, guard.indexes, out)
        if options.report:
            _write_report(options.report, guard, command)

    if guard.refusals or holder["pip"].refused.is_set():
        for refusal in guard.refusals:
            out(str(refusal))
        out("nothing was installed: the view of the index was refused (exit 75)")
        return int(ExitCode.REFUSED)
    if code == 0:
        _unproxy_outputs(cmd, guard)
    return code


def _pip_command(
    cmd: PipCommand,
    guarded: Callable[..., str],
    index_url: str,
    extras: list[str],
    no_index: bool,
    isolated: bool,
    workdir: Path,
) -> tuple[list[str], dict[str, str]]:
    """pip's argv and environment, with every index pointed at the guard."""
    env: dict[str, str] = {}
    proxied_main = guarded(index_url, main=True)
    proxied_extras = [guarded(u) for u in extras]
    req_files = [t.value for t in cmd.tokens if t.option in ("--requirement", "--constraint")]
    copies = rewrite_for_guard(
        [v for v in req_files if v], lambda u: guarded(u), workdir
    )
    argv: list[str] = []
    for token in cmd.tokens:
        if token.option in ("--index-url", "--extra-index-url", "--timeout", "--proxy"):
            continue
        if token.option in ("--requirement", "--constraint") and token.value in copies:
            argv += [token.option, copies[token.value]]
            continue
        argv += token.raw
    if not no_index:
        if isolated:
            argv += ["--index-url", proxied_main]
            for url in proxied_extras:
                argv += ["--extra-index-url", url]
        else:
            # Environment variables override pip's configuration files key by key, and, unlike
            # command-line values, replace the configured extra indexes instead of adding to them.
            env["PIP_INDEX_URL"] = proxied_main
            env["PIP_EXTRA_INDEX_URL"] = " ".join(proxied_extras)
    return argv, env


def _remember(store: StateStore, indexes: list[IndexEntry], out: Callable[[str], None]) -> None:
    for entry in indexes:
        if entry.seen:
            try:
                store.remember(entry.upstream, entry.seen)
            except SafePipError as exc:
                out(f"warning: could not remember serials: {exc}")


def _write_report(path: str, guard: Guard, command: str) -> None:
    from safe_pip import __version__

    document = {"version": 1, "tool": f"safe-pip {__version__}", "command": command}
    document["indexes"] = [
        {
            "url": e.display,
            "changelog": e.changelog_url and strip_credentials(e.changelog_url),
            "origin": e.origin and strip_credentials(e.origin),
            "changelog_error": e.summary_error,
        }
        for e in guard.indexes
    ]
    document.update(guard.report())
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write the guard report {path}: {exc.strerror}") from exc


def _unproxy_outputs(cmd: PipCommand, guard: Guard) -> None:
    """Files pip wrote that name the guard's URLs get the index's own URLs back."""
    targets = [v for v in cmd.options.get("--report", []) if v != "-"]
    if cmd.command == "lock":
        targets += cmd.options.get("--output", []) or ["pylock.toml"]
    for target in targets:
        path = Path(target)
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            new = guard.unproxy(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
