"""Reading PEP 751 lock files: what is kept, what is skipped, and errors naming file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from safe_pip.errors import InputError
from safe_pip.index.names import is_pylock
from safe_pip.locks.pins import LockedFile
from safe_pip.locks.pylock import read_pylock

LOCK = """\
lock-version = "1.0"
created-by = "hand"

[[packages]]
name = "Foo.Bar"
version = "1.0"
index = "https://index.example/simple/"

[[packages.wheels]]
url = "https://files.example/foo_bar-1.0-py3-none-any.whl"
upload-time = 2025-03-04T05:06:07Z
size = 1234
hashes = {SHA256 = "ABCDEF"}

[packages.sdist]
name = "foo_bar-1.0.tar.gz"
url = "https://files.example/foo_bar-1.0.tar.gz"
hashes = {sha256 = "012345"}

[[packages]]
name = "local"
directory = { path = "src/local" }

[[packages]]
name = "nover"
"""


def test_reads_packages_wheels_and_sdists(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(LOCK, encoding="utf-8")
    foo, nover = read_pylock(str(path))
    assert (foo.project, foo.version, foo.index, foo.line) == (
        "foo-bar", "1.0", "https://index.example/simple/", 4
    )
    assert foo.files == (
        LockedFile(
            filename="foo_bar-1.0-py3-none-any.whl",
            url="https://files.example/foo_bar-1.0-py3-none-any.whl",
            hashes={"sha256": "abcdef"},
            size=1234,
            upload_time="2025-03-04T05:06:07+00:00",
            line=4,
        ),
        LockedFile(
            filename="foo_bar-1.0.tar.gz",
            url="https://files.example/foo_bar-1.0.tar.gz",
            hashes={"sha256": "012345"},
            size=None,
            upload_time=None,
            line=4,
        ),
    )
    assert (nover.project, nover.version, nover.line) == ("nover", None, 24)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pylock.toml", True),
        ("pylock.dev.toml", True),
        ("sub/dir/pylock.ci.toml", True),
        ("pylock.a.b.toml", False),
        ("mylock.toml", False),
        ("requirements.txt", False),
    ],
)
def test_pep_751_file_names(name: str, expected: bool) -> None:
    assert is_pylock(name) is expected


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('lock-version = "1.0"\n[[packages]]\nversion = "1"\n', 2, "needs a name"),
        ('lock-version = "1.0"\n[[packages]]\nname = "a"\nversion = "x y"\n', 2, "PEP 440"),
        ('lock-version = "1.0"\n\n[[packages]]\nname = "a"\nsdist = {url = "u"}\n', 3, "hashes"),
        ('lock-version = "1.0"\n[[packages]]\nname = "a"\nwheels = [{hashes = {s = "1"}}]\n',
         2, "needs a name, url or path"),
        ('lock-version = "1.0"\n[[packages]]\nname = "a"\n[[packages.wheels]]\nname = "w"\n'
         'size = -1\nhashes = {sha256 = "1"}\n', 2, "size must be"),
        ('lock-version = "1.0"\npackages = "no"\n', None, "array of tables"),
        ("created-by = 1\n", None, "no lock-version"),
        ('lock-version = "1.0"\nname = = 1\n', 2, "not valid TOML"),
        ('lock-version = "1.0"\nx = {a = 1\n', 2, "not valid TOML"),  # at end of document
    ],
)
def test_malformed_locks(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_pylock(str(path))
    assert info.value.line == line
    assert message in info.value.message
    where = f"{path}:{line}" if line else str(path)
    assert str(info.value).startswith(where + ": ")
