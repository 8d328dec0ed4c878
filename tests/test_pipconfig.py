"""safe-pip's reader of pip's configuration gives what pip itself uses (issue 7).

pip's answer comes from pip's own ``Configuration`` in a subprocess with the same environment:
every key pip loaded, with the value pip's ``get_value`` gives it (later files win).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safe_pip._errors import UsageError
from safe_pip._pipconfig import (
    _pip_config_in_process,
    config_files,
    pip_config,
    read_pip_config,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the file reader is used on Linux only"
)

_PIPS_VIEW = """
import json
from pip._internal.configuration import Configuration
configuration = Configuration(isolated=False)
configuration.load()
keys = set()
for _source, values in configuration.items():
    keys.update(values)
print(json.dumps({key: configuration.get_value(key) for key in sorted(keys)}))
"""


def pips_view(env: dict[str, str]) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PIPS_VIEW], env=env, capture_output=True, text=True, check=True
    )
    loaded: dict[str, str] = json.loads(proc.stdout)
    return loaded


def conf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def layered(tmp_path: Path) -> dict[str, str]:
    """An environment with every per-user and global location pip reads, keys colliding."""
    home = tmp_path / "home"
    # A section of its own, so the machine's /etc/pip.conf (read by pip, and so here too)
    # cannot decide the values spelled out below.
    conf(home / ".pip" / "pip.conf", "[x-test]\nindex-url = http://legacy/\ntimeout = 3\n")
    conf(
        tmp_path / "xdg-home" / "pip" / "pip.conf",
        "[x-test]\nindex-url = http://user/\n[x-install]\nEXTRA_INDEX_URL = http://a/\n"
        "  http://b/\n--trusted-host = user-host\n",
    )
    conf(tmp_path / "d1" / "pip" / "pip.conf", "[x-test]\ntimeout = 1\ncert = /d1.pem\n")
    conf(tmp_path / "d2" / "pip" / "pip.conf", "[x-test]\ncert = /d2.pem\nproxy = http://p/\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-home"),
        # a relative entry counts for nothing, as in pip's platformdirs
        XDG_CONFIG_DIRS=f"{tmp_path / 'd1'}:relative/dir: {tmp_path / 'd2'}",
        PIP_TIMEOUT="9",
        PIP_Default_Timeout="8",
        PIP_VERSION="1",  # not configuration
    )
    return env


def test_user_and_global_files_layer_as_in_pip(layered: dict[str, str]) -> None:
    ours = read_pip_config(layered)
    assert ours == pips_view(layered)
    # spelled out, so a shared mistake cannot pass unseen
    assert ours["x-test.index-url"] == "http://user/"  # the XDG file beats the legacy one
    assert ours["x-test.timeout"] == "3"  # user beats global
    assert ours["x-test.cert"] == "/d2.pem"  # files load in order, the later winning
    assert ours["x-install.extra-index-url"].split() == ["http://a/", "http://b/"]
    assert ours["x-install.trusted-host"] == "user-host"
    assert ours[":env:.timeout"] == "9"
    assert ours[":env:.default-timeout"] == "8"
    assert ":env:.version" not in ours


def test_an_existing_pip_config_file_replaces_the_user_files(
    layered: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its path sorts before the global files': pip's precedence, not the order in which
    # ``pip config list`` prints the files, must decide (an earlier reader got this wrong).
    env_file = conf(tmp_path / "a-env.conf", "[x-test]\nproxy = http://env/\n")
    layered["PIP_CONFIG_FILE"] = str(env_file)
    ours = read_pip_config(layered)
    assert ours == pips_view(layered)
    set_environment(monkeypatch, layered)
    assert _pip_config_in_process() == ours
    assert ours["x-test.proxy"] == "http://env/"  # beats the global file
    assert ours["x-test.cert"] == "/d2.pem"  # global files are still read
    assert "x-test.index-url" not in ours  # the user files are not


def test_a_missing_pip_config_file_keeps_the_user_files(
    layered: dict[str, str], tmp_path: Path
) -> None:
    layered["PIP_CONFIG_FILE"] = str(tmp_path / "absent.conf")
    ours = read_pip_config(layered)
    assert ours == pips_view(layered)
    assert ours["x-test.index-url"] == "http://user/"


def test_devnull_loads_no_file(layered: dict[str, str]) -> None:
    layered["PIP_CONFIG_FILE"] = os.devnull
    assert config_files(layered) is None
    ours = read_pip_config(layered)
    assert ours == pips_view(layered)
    assert ours == {
        ":env:.timeout": "9", ":env:.default-timeout": "8", ":env:.config-file": os.devnull
    }


def test_no_xdg_variables_means_the_default_places(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    assert config_files(env) == [
        "/etc/xdg/pip/pip.conf",
        "/etc/pip.conf",
        f"{tmp_path}/.pip/pip.conf",
        f"{tmp_path}/.config/pip/pip.conf",
        os.path.join(sys.prefix, "pip.conf"),
    ]


def test_the_in_process_reader_agrees(
    layered: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader used off Linux (pip's own, imported) follows the same order."""
    set_environment(monkeypatch, layered)
    assert _pip_config_in_process() == read_pip_config(layered)


def set_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """This process's environment as ``env`` (pip's own reader reads os.environ)."""
    for name in [n for n in os.environ if n.startswith(("PIP_", "XDG_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_a_malformed_file_is_named(layered: dict[str, str], tmp_path: Path) -> None:
    bad = conf(tmp_path / "bad.conf", "index-url = http://no-section/\n")
    layered["PIP_CONFIG_FILE"] = str(bad)
    with pytest.raises(UsageError, match=rf"pip's configuration: {bad}: "):
        pip_config(None, layered)
