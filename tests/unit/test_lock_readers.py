"""Reading uv, Poetry and PDM lock files: pins, indexes, skipped packages, lines, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from safe_pip.errors import InputError
from safe_pip.locks.checker import _same_time
from safe_pip.locks.lockfiles import lock_kind, read_lock
from safe_pip.locks.pdmlock import pdm_sources
from safe_pip.locks.pins import LockedFile
from safe_pip.locks.tomlfile import entry_lines

DATA = Path(__file__).parents[1] / "data" / "locks"

UV_LOCK = """\
version = 1
revision = 3
requires-python = ">=3.10"

[[package]]
name = "Foo.Bar"
version = "1.0"
source = { registry = "https://index.example/simple" }
sdist = { url = "https://files.example/foo_bar-1.0.tar.gz", hash = "sha256:AB12", size = 10, \
upload-time = "2025-03-04T05:06:07.123Z" }
wheels = [
    { url = "https://files.example/foo_bar-1.0-py3-none-any.whl", hash = "sha256:cd34", \
size = 20, upload-time = "2025-03-04T05:06:07.123Z" },
]

[package.optional-dependencies]
extra = [{ name = "other" }]

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "fromgit"
version = "2.0"
source = { git = "https://git.example/fromgit?rev=main#0123abcd" }

[[package]]
name = "local"
version = "1.0"
source = { registry = "wheels" }

[[package]]
name = "private"
version = "3.0"
source = { registry = "https://private.index.example/simple/" }
wheels = [
    { url = "https://files.example/private-3.0-py3-none-any.whl", hash = "sha256:ef56" },
]
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_uv_lock_pins_indexes_files_and_skips(tmp_path: Path) -> None:
    lock = read_lock(write(tmp_path, "uv.lock", UV_LOCK), "uv")
    assert (lock.kind, lock.skipped) == ("uv", 3)  # editable, git, local directory registry
    foo, private = lock.pins
    assert (foo.project, foo.version, foo.index, foo.line) == (
        "foo-bar",
        "1.0",
        "https://index.example/simple",
        5,
    )
    assert foo.files == (
        LockedFile(
            "foo_bar-1.0-py3-none-any.whl",
            "https://files.example/foo_bar-1.0-py3-none-any.whl",
            {"sha256": "cd34"},
            20,
            "2025-03-04T05:06:07.123Z",
            5,
        ),
        LockedFile(
            "foo_bar-1.0.tar.gz",
            "https://files.example/foo_bar-1.0.tar.gz",
            {"sha256": "ab12"},
            10,
            "2025-03-04T05:06:07.123Z",
            5,
        ),
    )
    assert (private.index, private.line, private.files[0].size) == (
        "https://private.index.example/simple/",
        32,
        None,
    )


def test_poetry_lock_written_by_poetry() -> None:
    path = str(DATA / "poetry" / "poetry.lock")
    assert lock_kind(path) == "poetry"
    lock = read_lock(path, "poetry")
    assert [(p.project, p.version, p.line) for p in lock.pins] == [
        ("alpha", "2.0", 5),
        ("beta", "1.0", 24),
        ("delta", "3.0", 40),
        ("epsilon", "1.0", 56),
        ("gamma", "0.5", 72),
    ]
    assert {p.project: p.index for p in lock.pins} == {
        "alpha": "https://index.example/simple",
        "beta": "https://index.example/simple",
        "delta": "https://index.example/simple",
        "epsilon": "https://private.index.example/simple",
        "gamma": "https://index.example/simple",
    }
    assert lock.pins[0].files[0].filename == "alpha-2.0-py3-none-any.whl"
    assert list(lock.pins[0].files[0].hashes) == ["sha256"]


def test_poetry_lock_from_pypi_old_files_table_and_skips(tmp_path: Path) -> None:
    """No [package.source] is PyPI (the main index); lock-version 1.1 kept the files apart."""
    text = """\
[[package]]
name = "requests"
version = "2.32.3"
description = ""
optional = false
python-versions = ">=3.8"

[[package]]
name = "mine"
version = "0.1"
description = ""
optional = false
python-versions = "*"
develop = true

[package.source]
type = "directory"
url = "../mine"

[metadata]
lock-version = "1.1"
python-versions = "^3.10"
content-hash = "abc"

[metadata.files]
requests = [
    {file = "requests-2.32.3-py3-none-any.whl", hash = "sha256:70761cfe"},
]
"""
    lock = read_lock(write(tmp_path, "poetry.lock", text), "poetry")
    (pin,) = lock.pins
    assert (pin.project, pin.index, pin.line, lock.skipped) == ("requests", None, 1, 1)
    assert pin.files[0].hashes == {"sha256": "70761cfe"}


def test_pdm_lock_written_by_pdm_takes_sources_beside_it() -> None:
    lock = read_lock(str(DATA / "pdm" / "pdm.lock"), "pdm")
    assert lock.skipped == 1  # localpkg, by path
    assert {p.project: p.index for p in lock.pins} == {
        "alpha": "https://index.example/simple/",
        "beta": "https://index.example/simple/",
        "delta": "https://index.example/simple/",
        "epsilon": "https://private.index.example/simple/",  # include_packages
        "gamma": "https://index.example/simple/",
    }
    assert lock.extra_indexes == ()
    static = read_lock(str(DATA / "pdm" / "static-urls.lock"), "pdm")
    assert static.pins[0].files[0].url == (
        "https://files.example/packages/41/11a38a57649995/alpha-2.0-py3-none-any.whl"
    )


def test_pdm_sources_without_pypi_and_several_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "s3cret")
    write(
        tmp_path,
        "pyproject.toml",
        """\
[[tool.pdm.source]]
name = "corp"
url = "https://${TOKEN}@corp.example/simple"

[[tool.pdm.source]]
name = "wheels"
url = "./wheels"
type = "find_links"

[[tool.pdm.source]]
name = "only"
url = "https://only.example/simple"
include_packages = ["special-*"]
""",
    )
    assert [(s.url, s.find_links) for s in pdm_sources(str(tmp_path / "pyproject.toml"))] == [
        ("https://s3cret@corp.example/simple", False),
        (str(tmp_path / "wheels"), True),
        ("https://only.example/simple", False),
    ]
    text = """\
[metadata]
lock_version = "4.5.0"
content_hash = "x"

[[package]]
name = "special-one"
version = "1.0"
files = [{file = "special_one-1.0.tar.gz", hash = "sha256:00"}]

[[package]]
name = "plain"
version = "1.0"
files = []

[[package]]
name = "mine"
version = "0.1"
editable = true
path = "."
"""
    lock = read_lock(write(tmp_path, "pdm.lock", text), "pdm")
    special, plain = lock.pins
    assert special.index == "https://only.example/simple"
    # The default index and corp may each serve it: pip's main index, corp an extra one.
    assert plain.index is None
    assert lock.extra_indexes == ("https://s3cret@corp.example/simple",)
    assert lock.find_links == (str(tmp_path / "wheels"),)
    assert lock.skipped == 1


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("sub/uv.lock", "", "uv"),
        ("poetry.lock", "", "poetry"),
        ("pdm.lock", "", "pdm"),
        ("pylock.dev.toml", "", "pylock"),
        ("locks/ci.lock", UV_LOCK, "uv"),
        ("other.toml", '[metadata]\nlock_version = "4.5.0"\n', "pdm"),
        ("x.lock", '[metadata]\nlock-version = "2.1"\ncontent-hash = "x"\n', "poetry"),
        ("lock.toml", 'lock-version = "1.0"\n[[packages]]\nname = "a"\n', "pylock"),
        ("requirements.txt", "alpha==1.0\n", None),
        ("empty.txt", "", None),
        ("settings.toml", "[tool.x]\na = 1\n", None),
    ],
)
def test_lock_told_by_name_then_content(
    tmp_path: Path, name: str, text: str, kind: str | None
) -> None:
    assert lock_kind(write(tmp_path, name, text)) == kind


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("uv.lock", 'version = 1\nrequires-python = ">=3"\n[[package]\n', 3, "not valid TOML"),
        ("uv.lock", "version = 2\n", None, "uv.lock version 2 is not supported (1 is)"),
        (
            "uv.lock",
            'version = 1\n\n[[package]]\nname = "a"\nsource = { registry = "https://i.example" }\n',
            3,
            "package[0]: a package from a registry needs a version string",
        ),
        (
            "uv.lock",
            'version = 1\n\n[[package]]\nname = "a"\nsource = { pypi = true }\n',
            3,
            "package[0]: source must be a table with one of registry, git",
        ),
        (
            "poetry.lock",
            '[[package]]\nname = "a"\nversion = "1"\n[package.source]\ntype = "svn"\n'
            '[metadata]\nlock-version = "2.1"\ncontent-hash = "x"\n',
            1,
            "package[0]: source.type 'svn' is not known",
        ),
        (
            "poetry.lock",
            '[metadata]\nlock-version = "3.0"\ncontent-hash = "x"\n',
            None,
            "Poetry lock-version '3.0' is not supported",
        ),
        (
            "pdm.lock",
            '[metadata]\nlock_version = "4.5"\n\n[[package]]\nname = "a"\nversion = "1"\n'
            'files = [{file = "a-1-py3-none-any.whl"}]\n',
            4,
            "package[0]: files[0] needs a hash 'algorithm:hexdigest'",
        ),
        ("pdm.lock", "[metadata]\n", None, "not a PDM lock file"),
    ],
)
def test_malformed_locks_name_file_and_line(
    tmp_path: Path, name: str, text: str, line: int | None, message: str
) -> None:
    path = write(tmp_path, name, text)
    kind = lock_kind(path)
    assert kind is not None
    with pytest.raises(InputError) as info:
        read_lock(path, kind)
    assert (info.value.path, info.value.line) == (path, line)
    assert info.value.message.startswith(message), info.value.message


def test_entry_lines_only_when_scan_and_parser_agree() -> None:
    entries = [{"name": "a"}, {"name": "b"}]
    text = '[[package]]\nname = "a"\n\n[[package]]  # second\nname = "B"\n'
    assert entry_lines(text, "package", entries) == [1, 4]
    # A header line inside a multi-line string: the scan finds three, the parser two.
    tricky = (
        '[[package]]\nname = "a"\ndescription = """\n[[package]]\n"""\n[[package]]\nname = "b"\n'
    )
    assert entry_lines(tricky, "package", entries) == [None, None]
    # As many headers, but the names disagree with the parsed order: no lines either.
    swapped = '[[package]]\nname = "b"\n[[package]]\nname = "a"\n'
    assert entry_lines(swapped, "package", entries) == [None, None]


@pytest.mark.parametrize(
    ("locked", "listed", "same"),
    [
        ("2026-12-06T06:16:09.541Z", "2026-12-06T06:16:09.541591Z", True),  # uv: milliseconds
        ("2026-12-06T06:16:09.542Z", "2026-12-06T06:16:09.541591Z", False),
        ("2026-12-06T06:16:09+00:00", "2026-12-06T06:16:09.999999Z", True),
        ("2026-12-06T06:16:09.541591Z", "2026-12-06T06:16:09.541590Z", False),
    ],
)
def test_upload_time_compared_at_the_locks_precision(locked: str, listed: str, same: bool) -> None:
    assert _same_time(locked, listed) is same


def test_pdm_source_errors_name_pyproject_and_line(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n\n[[tool.pdm.source]]\nname = "a"\n')
    write(tmp_path, "pdm.lock", '[metadata]\nlock_version = "4.5.0"\n')
    with pytest.raises(InputError) as info:
        read_lock(str(tmp_path / "pdm.lock"), "pdm")
    assert (info.value.path, info.value.line) == (str(tmp_path / "pyproject.toml"), 4)
    assert info.value.message == "tool.pdm.source[0] needs a name and a url string"
