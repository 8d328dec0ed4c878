"""No way around the guard: every spelling pip accepts, and every host pip or a tool is told
of, ends guarded (the fresh release, or 75 with nothing installed), never the stale release.

The spellings are enumerated from pip's own parser, not sampled: every option that names an
index, a find-links location, a proxy or trust, under its full name, every unique
abbreviation, the ``=`` form, the short form and its ``PIP_*`` variable.
"""

from __future__ import annotations

import optparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guarded import installed, safe_pip

from safe_pip.pip.cmdline import parse_pip_args
from safe_pip.testing import CDN, Origin, fill_cache

#: pip's options (by destination) that say where pip reads packages from, or how it reaches
#: and trusts a host.
NETWORK_DESTS = (
    "index_url", "extra_index_urls", "find_links", "no_index", "proxy", "cert",
    "client_cert", "trusted_hosts", "isolated_mode", "no_proxy_env", "keyring_provider",
)


class World:
    """An origin that has released alpha 2.0, and a CDN edge that will never learn of it."""

    def __init__(self, origin: Origin, cdn: CDN) -> None:
        self.origin, self.cdn = origin, cdn

    @property
    def stale(self) -> str:
        return self.cdn.simple_url


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with Origin() as origin:
        origin.publish("alpha", "1.0")
        with CDN(origin, edges=1, purge_delays=[None]) as cdn:
            fill_cache(cdn, "alpha", api=False)
            origin.publish("alpha", "2.0")
            yield World(origin, cdn)


def _options() -> list[optparse.Option]:
    cmd = parse_pip_args("install", [])
    found = [cmd.option_of(dest) for dest in NETWORK_DESTS]
    return [option for option in found if option is not None]


def _abbreviations(long_name: str) -> list[str]:
    """Every prefix of a long option that pip's parser reads as that option."""
    parser = parse_pip_args("install", []).parser
    found = []
    for end in range(3, len(long_name) + 1):
        prefix = long_name[:end]
        try:
            if parser._match_long_opt(prefix) == long_name:
                found.append(prefix)
        except optparse.BadOptionError:
            continue
    return found


def _value_for(option: optparse.Option, world: World) -> str | None:
    """A value naming the stale edge where the option names a location; else a harmless one."""
    if option.dest in ("index_url", "extra_index_urls"):
        return world.stale
    if option.dest == "find_links":
        return f"{world.stale}alpha/"
    if option.dest == "proxy":
        return "http://127.0.0.1:9"  # nothing listens: the guard cannot reach the index
    if option.dest in ("cert", "client_cert"):
        return os.devnull
    if option.dest == "trusted_hosts":
        return "127.0.0.1"
    if option.dest == "keyring_provider":
        return "disabled"
    return None  # a flag


def _spellings() -> list[tuple[str, str, list[str], dict[str, str]]]:
    """(id, destination, command-line items, environment) for every way of giving each
    option."""
    cases: list[tuple[str, str, list[str], dict[str, str]]] = []
    for option in _options():
        dest, takes_value = str(option.dest), option.takes_value()
        for long_name in option._long_opts:
            for spelling in _abbreviations(long_name):
                items = [spelling, "VALUE"] if takes_value else [spelling]
                cases.append((spelling, dest, items, {}))
            if takes_value:
                cases.append((f"{long_name}=", dest, [f"{long_name}=VALUE"], {}))
            env_name = "PIP_" + long_name[2:].upper().replace("-", "_")
            cases.append((env_name, dest, [], {env_name: "VALUE" if takes_value else "1"}))
        for short in option._short_opts:
            if takes_value:
                cases.append((f"{short} VALUE", dest, [short, "VALUE"], {}))
                cases.append((f"{short}VALUE", dest, [f"{short}VALUE"], {}))
            else:
                cases.append((short, dest, [short], {}))
    return cases


SPELLINGS = _spellings()


def test_the_enumeration_covers_what_it_must() -> None:
    ids = {case[0] for case in SPELLINGS}
    # The spellings that once went around the guard, and pip's aliases.
    for expected in ("--index", "--index-url=", "-iVALUE", "--pypi-url", "PIP_PYPI_URL",
                     "--extra", "PIP_EXTRA_INDEX_URL", "--find", "--isol", "--prox"):
        assert expected in ids, sorted(ids)
    assert len(SPELLINGS) > 60


@pytest.mark.parametrize(
    ("name", "dest", "items", "env"), SPELLINGS, ids=[c[0] for c in SPELLINGS]
)
def test_every_spelling_ends_guarded(
    world: World, tmp_path: Path, name: str, dest: str, items: list[str], env: dict[str, str]
) -> None:
    option = next(o for o in _options() if o.dest == dest)
    value = _value_for(option, world) or ""
    argv = [item.replace("VALUE", value) for item in items]
    env = {key: text.replace("VALUE", value) for key, text in env.items()}
    # The main index is always the stale edge (no test may reach the real index); an option
    # that names an index names it again, so a spelling that slipped past would install 1.0.
    main = [] if option.dest == "index_url" else ["--index-url", world.stale]
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", world.cdn.changelog_url, "--max-wait", "0",
        "install", *main, *argv, "--target", str(target), "--no-cache-dir", "alpha",
        env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state"), **env},
    )
    got = installed(target)
    assert got.get("alpha") != "1.0", (name, proc.stderr)
    if option.dest in ("index_url", "extra_index_urls", "isolated_mode"):
        # The stale edge is guarded under every spelling: waited out (not at all here), then
        # refused with nothing installed.
        assert proc.returncode == 75, (name, proc.returncode, proc.stderr)
        assert got == {}
    elif option.dest == "no_index":
        assert proc.returncode == 1, (name, proc.stderr)  # pip's own: no index, no alpha
        assert got == {}
    elif option.dest == "find_links":
        assert proc.returncode == 2, (name, proc.stderr)
        assert "find-links" in proc.stderr and got == {}
    else:
        assert proc.returncode in (2, 75), (name, proc.returncode, proc.stderr)
        assert got == {}


def test_an_index_pip_reads_from_a_file_safe_pip_never_sees_is_refused(
    world: World, tmp_path: Path
) -> None:
    """pip under ``--python`` reads the target environment's own pip.conf, which safe-pip's
    reading (in its own environment) does not see: pip's request for that host still goes
    to the guard as pip's proxy, and the guard refuses it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "pip.conf").write_text(f"[global]\nfind-links = {world.stale}alpha/\n")
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", world.origin.changelog_url, "--max-wait", "0",
        "install", "--python", str(venv / "bin" / "python"), "--index-url",
        world.origin.simple_url, "--target", str(target), "--no-cache-dir", "alpha==1.0",
        env={
            "SAFE_PIP_STATE_DIR": str(tmp_path / "state"),
            # Configuration files are read (os.devnull would turn them all off), but not the
            # machine's own: the global ones are looked for under XDG_CONFIG_DIRS.
            "PIP_CONFIG_FILE": str(empty),
            "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        },
    )
    assert proc.returncode == 75, proc.stderr
    assert installed(target) == {}
    cdn_host = world.stale.split("/")[2]
    assert f"refused a request to {cdn_host}" in proc.stderr, proc.stderr


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if not found.exists():
        pytest.fail(f"{name} is not installed (it is in the test extra)")
    return str(found)


@pytest.mark.parametrize("spelling", ["--index-url", "--default-index", "--extra-index-url"])
def test_uv_given_its_own_index_is_refused(world: World, tmp_path: Path, spelling: str) -> None:
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", world.origin.changelog_url, "--max-wait", "0",
        "run", "--index-url", world.origin.simple_url, "--",
        _tool("uv"), "pip", "install", "--python", sys.executable, "--target", str(target),
        spelling, world.stale, "alpha",
        env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state"), "UV_NO_CONFIG": "1",
             "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )
    # Guarded either way: uv prefers the guard's index (given as UV_DEFAULT_INDEX) and
    # installs the fresh release, or it asks the stale edge, through the guard, and is ended.
    if proc.returncode == 0:
        assert installed(target) == {"alpha": "2.0"}, proc.stderr
    else:
        assert proc.returncode == 75, proc.stderr
        assert installed(target) == {}
        assert "refused a request to 127.0.0.1:" in proc.stderr, proc.stderr


def test_pip_compile_given_its_own_index_is_refused(world: World, tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("alpha\n")
    proc = safe_pip(
        "--changelog", world.origin.changelog_url, "--max-wait", "0",
        "run", "--index-url", world.origin.simple_url, "--",
        _tool("pip-compile"), "--quiet", "--no-header", "-i", world.stale,
        "--output-file", "requirements.txt", "requirements.in",
        cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state")},
    )
    assert proc.returncode == 75, proc.stderr
    assert "refused a request to 127.0.0.1:" in proc.stderr, proc.stderr
    assert not (tmp_path / "requirements.txt").exists()


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_direct_references_reach_their_hosts_through_the_guard(
    tmp_path: Path, scheme: str
) -> None:
    """A file the user named by URL is no index page: pip fetches it through the guard as its
    proxy (a CONNECT tunnel for https, a forwarded request for http), and only that host."""
    from safe_pip.testing._tls import make_test_ca

    ca = make_test_ca(tmp_path / "ca")
    tls = ca.server_context() if scheme == "https" else None
    with Origin() as index, Origin(tls=tls) as files:
        index.publish("beta", "1.0")
        files.publish("alpha", "1.0", requires=["beta"])
        url = files.file_url("alpha-1.0-py3-none-any.whl")
        assert url.startswith(f"{scheme}://")
        target = tmp_path / "target"
        proc = safe_pip(
            "install", "--index-url", index.simple_url, "--cert", str(ca.ca_file),
            "--target", str(target), "--no-cache-dir", f"alpha @ {url}",
            env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state")},
        )
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}


def test_a_direct_reference_in_a_requirements_file_is_vouched_for(tmp_path: Path) -> None:
    with Origin() as index, Origin() as files:
        files.publish("alpha", "1.0")
        reqs = tmp_path / "requirements.txt"
        reqs.write_text(f"alpha @ {files.file_url('alpha-1.0-py3-none-any.whl')}\n")
        target = tmp_path / "target"
        proc = safe_pip(
            "install", "--index-url", index.simple_url, "--target", str(target),
            "--no-cache-dir", "-r", str(reqs),
            env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state")},
        )
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0"}


def _requirement_file_spellings() -> list[tuple[str, str, str]]:
    """(id, destination, line) for every way a requirements file can give each network
    option, from pip's own requirement-line parser (its abbreviations differ from the
    command line's: it knows fewer options)."""
    from pip._internal.req.req_file import build_parser

    parser = build_parser()
    cases = []
    for option in parser._get_all_options():
        if option.dest not in NETWORK_DESTS:
            continue
        dest, takes_value = str(option.dest), option.takes_value()
        for long_name in option._long_opts:
            for end in range(3, len(long_name) + 1):
                prefix = long_name[:end]
                try:
                    if parser._match_long_opt(prefix) != long_name:
                        continue
                except optparse.BadOptionError:
                    continue
                cases.append((f"file {prefix}", dest, f"{prefix} VALUE" if takes_value else prefix))
            if takes_value:
                cases.append((f"file {long_name}=", dest, f"{long_name}=VALUE"))
        for short in option._short_opts:
            cases.append((f"file {short}VALUE", dest, f"{short}VALUE" if takes_value else short))
    return cases


FILE_SPELLINGS = _requirement_file_spellings()


@pytest.mark.parametrize(
    ("name", "dest", "line"), FILE_SPELLINGS, ids=[c[0] for c in FILE_SPELLINGS]
)
def test_every_spelling_in_a_requirements_file_ends_guarded(
    world: World, tmp_path: Path, name: str, dest: str, line: str
) -> None:
    value = f"{world.stale}alpha/" if dest == "find_links" else world.stale
    if dest == "trusted_hosts":
        value = "127.0.0.1"
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"{line.replace('VALUE', value)}\nalpha\n")
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", world.cdn.changelog_url, "--max-wait", "0",
        "install", "--index-url", world.stale, "-r", str(reqs), "--target", str(target),
        "--no-cache-dir", env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state")},
    )
    got = installed(target)
    assert got == {}, (name, proc.stderr)
    expected = {"no_index": 1, "find_links": 2}.get(dest, 75)
    assert proc.returncode == expected, (name, proc.returncode, proc.stderr)


@pytest.mark.parametrize("section", ["global", "install"])
@pytest.mark.parametrize(
    ("key", "dest"),
    [
        (name[2:], str(option.dest))
        for option in _options()
        if option.takes_value() and option.dest in ("index_url", "extra_index_urls", "find_links")
        for name in option._long_opts
    ],
)
def test_every_index_key_in_pip_conf_ends_guarded(
    world: World, tmp_path: Path, section: str, key: str, dest: str
) -> None:
    value = f"{world.stale}alpha/" if dest == "find_links" else world.stale
    config = tmp_path / "pip.conf"
    config.write_text(f"[{section}]\n{key} = {value}\n")
    main = [] if dest == "index_url" else ["--index-url", world.stale]
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", world.cdn.changelog_url, "--max-wait", "0",
        "install", *main, "--target", str(target), "--no-cache-dir", "alpha",
        env={
            "SAFE_PIP_STATE_DIR": str(tmp_path / "state"),
            "PIP_CONFIG_FILE": str(config),
            "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),  # not the machine's global pip.conf
        },
    )
    assert installed(target) == {}, (key, proc.stderr)
    assert proc.returncode == (2 if dest == "find_links" else 75), (key, proc.stderr)
