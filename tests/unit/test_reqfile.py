"""The requirements-file reader: pip's syntax, includes, index options and guard copies.

Pure and fast: files are written to ``tmp_path``; nothing runs pip. One test compares our
reading with pip's own parser, in process, on a file full of edge cases, so that a pip whose
rules drift from ours is noticed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from safe_pip.errors import InputError
from safe_pip.pip.requirements import (
    REMOTE_MESSAGE,
    IndexOptions,
    ReqLine,
    index_options,
    read_requirements,
    requirement_names,
    rewrite_for_guard,
)

SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "b" * 64


def write(path: Path, text: str | bytes) -> Path:
    """Write a file (creating its directory); text is written as UTF-8 bytes, newlines kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def read_one(tmp_path: Path, text: str) -> ReqLine:
    lines = read_requirements(write(tmp_path / "r.txt", text))
    assert len(lines) == 1, lines
    return lines[0]


def error_of(path: Path | str) -> InputError:
    with pytest.raises(InputError) as info:
        read_requirements(path)
    return info.value


# --- lines, comments, continuations -----------------------------------------------------------


def test_requirements_comments_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.txt",
        "# a comment line\n"
        "\n"
        "   \n"
        "requests>=2.31  # trailing comment\n"
        "   # indented comment\n"
        "Flask[async]==3.0.0\n",
    )
    lines = read_requirements(path)
    assert [(rl.line, rl.kind, rl.text) for rl in lines] == [
        (4, "requirement", "requests>=2.31"),
        (6, "requirement", "Flask[async]==3.0.0"),
    ]
    first = lines[0]
    assert first.path == str(path)
    assert first.requirement == Requirement("requests>=2.31")
    assert first.hashes == ()
    assert first.constraint is False
    assert first.options == ()
    assert first.spec == "requests>=2.31"


def test_hash_sign_inside_a_url_is_not_a_comment(tmp_path: Path) -> None:
    rl = read_one(
        tmp_path,
        "git+https://example.org/repo.git#egg=pkg&subdirectory=sub # comment\n",
    )
    assert rl.kind == "direct"
    assert rl.text == "git+https://example.org/repo.git#egg=pkg&subdirectory=sub"
    assert rl.requirement is None
    whl = "https://example.org/p-1.0-py3-none-any.whl#sha256=" + "c" * 64
    assert read_one(tmp_path, f"{whl}\n").spec == whl


def test_continuation_lines_join_and_keep_the_first_line_number(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.txt",
        f"first==1.0\nsecond==2.0 \\\n    --hash={SHA_A} \\\n    --hash={SHA_B}\nthird==3.0\n",
    )
    lines = read_requirements(path)
    assert [(rl.line, rl.spec) for rl in lines] == [
        (1, "first==1.0"),
        (2, "second==2.0"),
        (5, "third==3.0"),
    ]
    assert lines[1].hashes == (SHA_A, SHA_B)


def test_continuation_is_ended_by_a_comment_line_as_in_pip(tmp_path: Path) -> None:
    # pip joins "foo \" with the comment line, then strips the comment: "foo" alone.
    path = write(tmp_path / "r.txt", "foo \\\n# a comment \\\nbar\n")
    assert [(rl.line, rl.text) for rl in read_requirements(path)] == [(1, "foo"), (3, "bar")]


def test_continuation_at_end_of_file(tmp_path: Path) -> None:
    assert read_one(tmp_path, "foo==1.0 \\").text == "foo==1.0"


def test_crlf_and_other_line_breaks_count_like_pip(tmp_path: Path) -> None:
    # pip splits with str.splitlines, so a form feed or CR also ends a line.
    path = write(tmp_path / "r.txt", "a\r\nb\rc\x0cd\n")
    assert [(rl.line, rl.text) for rl in read_requirements(path)] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
        (4, "d"),
    ]


# --- environment variables --------------------------------------------------------------------


def test_env_vars_expand_only_in_pips_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKG_VERSION_1", "2.0")
    monkeypatch.setenv("lower", "nope")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    rl = read_one(tmp_path, "pkg==${PKG_VERSION_1}\n")
    assert rl.requirement == Requirement("pkg==2.0")
    assert rl.spec == "pkg==2.0"
    assert rl.text == "pkg==${PKG_VERSION_1}"  # as written: secrets stay out of messages

    idx = read_one(tmp_path, "--index-url https://h/${EMPTY}/${UNSET_VAR}/${lower}/$PKG\n")
    assert idx.options == (("--index-url", "https://h/${EMPTY}/${UNSET_VAR}/${lower}/$PKG"),)


def test_env_var_expands_in_an_include_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQ_DIR", "sub")
    write(tmp_path / "sub" / "inner.txt", "inner\n")
    lines = read_requirements(write(tmp_path / "r.txt", "-r ${REQ_DIR}/inner.txt\n"))
    assert lines[-1].path == str(tmp_path / "sub" / "inner.txt")


# --- includes ---------------------------------------------------------------------------------


def test_includes_are_read_depth_first_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path / "a" / "b" / "deep.txt", "deep\n")
    write(tmp_path / "a" / "mid.txt", "mid-before\n--requirement=b/deep.txt\nmid-after\n")
    write(tmp_path / "a" / "cons.txt", "pinned==1.0\n-r ../plain.txt\n")
    write(tmp_path / "plain.txt", "plain\n")
    top = write(tmp_path / "a" / "top.txt", "top-before\n-r mid.txt\n-c cons.txt\ntop-after\n")
    lines = read_requirements(top)
    reqs = [(rl.spec, rl.constraint, Path(rl.path).name) for rl in lines if rl.kind != "option"]
    assert reqs == [
        ("top-before", False, "top.txt"),
        ("mid-before", False, "mid.txt"),
        ("deep", False, "deep.txt"),
        ("mid-after", False, "mid.txt"),
        ("pinned==1.0", True, "cons.txt"),
        # -r inside a constraints file includes requirements, as in pip
        ("plain", False, "plain.txt"),
        ("top-after", False, "top.txt"),
    ]
    includes = [rl.options for rl in lines if rl.kind == "option"]
    assert includes == [
        (("--requirement", "mid.txt"),),
        (("--requirement", "b/deep.txt"),),
        (("--constraint", "cons.txt"),),
        (("--requirement", "../plain.txt"),),
    ]
    # included files are named by absolute path, as pip names them
    assert {rl.path for rl in lines if rl.spec == "deep"} == {
        str(tmp_path / "a" / "b" / "deep.txt")
    }


def test_an_include_line_includes_its_first_requirement_file_only(tmp_path: Path) -> None:
    # pip: the first -r wins over any -c, the rest of the line is ignored
    for name in ("a.txt", "b.txt", "c.txt"):
        write(tmp_path / name, f"from-{name}\n")
    path = write(tmp_path / "r.txt", "-c c.txt -r a.txt -r b.txt --pre\n")
    lines = read_requirements(path)
    assert [(rl.spec, rl.constraint) for rl in lines[1:]] == [("from-a.txt", False)]


def test_constraint_top_level_file(tmp_path: Path) -> None:
    lines = read_requirements(write(tmp_path / "c.txt", "x==1\n"), constraint=True)
    assert [rl.constraint for rl in lines] == [True]


def test_relative_top_level_path_stays_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "r.txt", "x\n-r more.txt\n")
    write(tmp_path / "more.txt", "y\n")
    monkeypatch.chdir(tmp_path)
    lines = read_requirements("r.txt")
    assert [rl.path for rl in lines] == ["r.txt", "r.txt", str(tmp_path / "more.txt")]


def test_the_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.txt", "common\n")
    write(tmp_path / "b.txt", "-r common.txt\n")
    top = write(tmp_path / "top.txt", "-r common.txt\n-r b.txt\n")
    assert [rl.spec for rl in read_requirements(top) if rl.kind != "option"] == [
        "common",
        "common",
    ]


def test_include_cycles_are_refused_naming_file_and_line(tmp_path: Path) -> None:
    me = write(tmp_path / "self.txt", "x\n\n-r ./self.txt\n")
    err = error_of(me)
    assert (err.path, err.line) == (str(me), 3)
    assert "cycle" in err.message

    write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "ok\n-c a.txt\n")
    err = error_of(tmp_path / "a.txt")
    assert (err.path, err.line) == (str(tmp_path / "b.txt"), 2)
    assert str(err).startswith(f"{tmp_path / 'b.txt'}:2: include cycle")


def test_include_cycle_through_a_symlink(tmp_path: Path) -> None:
    write(tmp_path / "real" / "r.txt", "-r ../link/r.txt\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert "cycle" in error_of(tmp_path / "real" / "r.txt").message


def test_remote_includes_are_refused(tmp_path: Path) -> None:
    for target in ("https://example.org/r.txt", "HTTP://example.org/r.txt", "file:///r.txt"):
        path = write(tmp_path / "r.txt", f"x\n-r {target}\n")
        err = error_of(path)
        assert (err.path, err.line) == (str(path), 2)
        assert err.message == f"{REMOTE_MESSAGE}: {target}"
    err = error_of("https://example.org/requirements.txt")
    assert err.message == REMOTE_MESSAGE


def test_missing_included_file_is_reported_at_the_include(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", "x\n-r nope.txt\n")
    err = error_of(path)
    assert (err.path, err.line) == (str(path), 2)
    assert err.message == f"{tmp_path / 'nope.txt'}: no such file"


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-i https://a/simple", (("--index-url", "https://a/simple"),)),
        ("-ihttps://a/simple", (("--index-url", "https://a/simple"),)),
        ("--index-url=https://a/simple", (("--index-url", "https://a/simple"),)),
        ("--pypi-url https://a/simple", (("--index-url", "https://a/simple"),)),
        ("--extra-index-url https://b/simple", (("--extra-index-url", "https://b/simple"),)),
        ("--extra-index https://b/simple", (("--extra-index-url", "https://b/simple"),)),
        ("--no-index", (("--no-index", None),)),
        ("-f ./wheels", (("--find-links", "./wheels"),)),
        ("--find-links=https://h/links", (("--find-links", "https://h/links"),)),
        ("--pre", (("--pre", None),)),
        ("--trusted-host h.example", (("--trusted-host", "h.example"),)),
        ("--prefer-binary", (("--prefer-binary", None),)),
        ("--only-binary :all:", (("--only-binary", ":all:"),)),
        ("--no-binary=a,b", (("--no-binary", "a,b"),)),
        ("--require-hashes", (("--require-hashes", None),)),
        ("--use-feature fast-deps", (("--use-feature", "fast-deps"),)),
        (
            "--no-index --find-links 'dir with space'",
            (
                ("--no-index", None),
                ("--find-links", "dir with space"),
            ),
        ),
        ("--pre stray-word --", (("--pre", None),)),  # optparse drops stray words
    ],
)
def test_option_lines(tmp_path: Path, text: str, expected: tuple[tuple[str, str | None]]) -> None:
    rl = read_one(tmp_path, text + "\n")
    assert rl.kind == "option"
    assert rl.options == expected
    assert rl.requirement is None
    assert rl.spec == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--foo", "unknown option --foo"),
        ("--foo=bar", "unknown option --foo"),
        ("-x value", "unknown option -x"),
        ("requests --foo", "unknown option --foo"),
        ("--pr", "ambiguous option --pr (could be --pre, --prefer-binary)"),
        ("--pre=yes", "--pre option does not take a value"),
        ("--index-url", "--index-url option requires a value"),
        ("-i", "-i option requires a value"),
        ("pkg --hash=md5:abc", "allowed hash algorithms for --hash are sha256, sha384, sha512"),
        ("pkg --hash=abc", "arguments to --hash must be a hash name followed by a value"),
        ("pkg -C nokey", "arguments to --config-settings must be of the form KEY=VAL"),
        ("--index-url 'unclosed", "could not split options"),
    ],
)
def test_bad_options_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "r.txt", "ok\n\\\n" + text + "\n")
    err = error_of(path)
    assert (err.path, err.line) == (str(path), 2)
    assert err.message.startswith(message), err.message
    assert str(err).startswith(f"{path}:2: ")


def test_per_requirement_options(tmp_path: Path) -> None:
    rl = read_one(
        tmp_path,
        f"pkg==1.0 ; python_version >= '3' --hash={SHA_A} --hash {SHA_B}"
        " -C key=val --config-settings=k2=v2 --global-option=--quiet\n",
    )
    assert rl.kind == "requirement"
    assert rl.spec == "pkg==1.0 ; python_version >= '3'"
    assert rl.requirement is not None
    assert rl.requirement.name == "pkg"
    assert str(rl.requirement.marker) == 'python_version >= "3"'
    assert rl.hashes == (SHA_A, SHA_B)
    assert rl.options == (
        ("--hash", SHA_A),
        ("--hash", SHA_B),
        ("--config-settings", "key=val"),
        ("--config-settings", "k2=v2"),
        ("--global-option", "--quiet"),
    )


# --- requirement kinds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("requests", "requirement", "requests"),
        ('requests [security] >= 2.8.1, == 2.8.* ; python_version < "2.7"', "requirement", None),
        ("zope.interface~=6.0", "requirement", "zope.interface"),
        ("urllib3 @ https://example.org/urllib3-1.26.8.zip", "direct", "urllib3"),
        ('pkg @ https://example.org/pkg.zip; python_version >= "3"', "direct", "pkg"),
        ("https://example.org/pkg-1.0-py3-none-any.whl", "direct", None),
        ("git+https://example.org/r.git@v1#egg=r", "direct", None),
        ("./downloads/numpy-1.9.2-cp34-none-win32.whl", "direct", None),
        ("pkg-1.0.tar.gz", "direct", None),
        (".", "direct", None),
        ("./local/project[extra]", "direct", None),
        ("../sibling ; sys_platform == 'linux'", "direct", None),
    ],
)
def test_requirement_kinds(tmp_path: Path, text: str, kind: str, name: str | None) -> None:
    rl = read_one(tmp_path, text + "\n")
    assert rl.kind == kind
    assert rl.spec == text
    if kind == "requirement" or name is not None:
        assert rl.requirement is not None
        if name is not None:
            assert rl.requirement.name == name
    else:
        assert rl.requirement is None


def test_name_at_url_markers_are_split_like_pip(tmp_path: Path) -> None:
    # packaging alone would read ";python_version..." as part of the URL; pip splits first.
    rl = read_one(tmp_path, 'pkg @ https://example.org/pkg.zip;python_version >= "3"\n')
    assert rl.requirement is not None
    assert rl.requirement.url == "https://example.org/pkg.zip"
    assert str(rl.requirement.marker) == 'python_version >= "3"'


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("-e .", "."),
        ("-e ./src/pkg[dev]", "./src/pkg[dev]"),
        ("--editable=git+https://example.org/r.git#egg=r", "git+https://example.org/r.git#egg=r"),
        ("-e. -C editable_mode=compat", "."),
        ("-e ./a -e ./b", "./a"),
    ],
)
def test_editables(tmp_path: Path, text: str, spec: str) -> None:
    rl = read_one(tmp_path, text + "\n")
    assert (rl.kind, rl.spec, rl.requirement, rl.hashes) == ("editable", spec, None, ())


def test_malformed_pep508_names_file_line_and_packagings_message(tmp_path: Path) -> None:
    path = write(tmp_path / "r.txt", "good\n# c\nbad name here\n")
    err = error_of(path)
    assert (err.path, err.line) == (str(path), 3)
    assert err.message.startswith("invalid requirement 'bad name here': Expected")
    assert err.message.endswith("(at column 5)")  # packaging's caret, kept on one line


def test_malformed_marker(tmp_path: Path) -> None:
    err = error_of(write(tmp_path / "r.txt", "pkg ; python_version <\n"))
    assert err.line == 1
    assert err.message.startswith("invalid marker 'python_version <'")


def test_options_after_a_requirement_other_than_per_requirement_ones_are_recorded(
    tmp_path: Path,
) -> None:
    # pip parses them and ignores them; they must not count as includes or index options
    rl = read_one(tmp_path, "pkg --index-url https://evil/simple -r other.txt\n")
    assert rl.kind == "requirement"
    assert rl.options == (("--index-url", "https://evil/simple"), ("--requirement", "other.txt"))
    assert index_options([rl]) == IndexOptions(None, (), False, (), False)


# --- file problems ----------------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path: Path) -> None:
    err = error_of(tmp_path / "nope.txt")
    assert (err.path, err.line, err.message) == (str(tmp_path / "nope.txt"), None, "no such file")
    err = error_of(tmp_path)
    assert err.path == str(tmp_path)
    assert "directory" in err.message


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",  # a zip (say, a wheel) passed by mistake
        b"requests\n\x00\n",
        b"caf\xe9\n",  # latin-1 without a coding declaration
        b"\xff\xfe\xff\xd8",  # BOM-looking garbage: undecodable UTF-16
    ],
)
def test_binary_or_undecodable_files_are_refused(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "r.txt", data)
    err = error_of(path)
    assert (err.path, err.message) == (str(path), "not a text requirements file")


def test_encodings_pip_honours(tmp_path: Path) -> None:
    utf16 = write(tmp_path / "u16.txt", "\ufeffpkg==1.0\n".encode("utf-16-le"))
    assert [rl.spec for rl in read_requirements(utf16)] == ["pkg==1.0"]
    utf8_bom = write(tmp_path / "bom.txt", b"\xef\xbb\xbfpkg==2.0\n")
    assert [rl.spec for rl in read_requirements(utf8_bom)] == ["pkg==2.0"]
    latin = write(tmp_path / "l1.txt", b"# -*- coding: latin-1 -*-\npkg==3.0  # caf\xe9\n")
    assert [rl.spec for rl in read_requirements(latin)] == ["pkg==3.0"]
    unknown = write(tmp_path / "unk.txt", b"# coding: no-such-codec\npkg\n")
    assert "unknown encoding" in error_of(unknown).message


# --- index options ----------------------------------------------------------------------------


def _lines(tmp_path: Path, text: str, name: str = "r.txt") -> list[ReqLine]:
    return read_requirements(write(tmp_path / name, text))


def test_index_options_nothing(tmp_path: Path) -> None:
    assert index_options(_lines(tmp_path, "pkg\n--pre\n")) == IndexOptions(
        None, (), False, (), False
    )


def test_index_options_follow_pips_order_rules(tmp_path: Path) -> None:
    opts = index_options(
        _lines(
            tmp_path,
            "--extra-index-url https://dropped/simple\n"
            "--index-url https://first/simple\n"  # drops the extra index before it
            "-i https://main/simple --extra-index-url https://x1/simple\n"
            "--extra-index-url https://x2/simple --extra-index-url=https://x3/simple\n",
        )
    )
    assert opts == IndexOptions(
        index_url="https://main/simple",
        extra_index_urls=("https://x1/simple", "https://x2/simple", "https://x3/simple"),
        no_index=False,
        find_links=(),
        has_index_options=True,
    )


def test_index_options_no_index_drops_index_urls_for_good(tmp_path: Path) -> None:
    opts = index_options(
        _lines(
            tmp_path,
            "--index-url https://a/simple\n--no-index\n--extra-index-url https://b/simple\n",
        )
    )
    assert opts == IndexOptions(None, (), True, (), True)


def test_index_options_across_included_files_and_include_lines(tmp_path: Path) -> None:
    write(tmp_path / "inner.txt", "--extra-index-url https://inner/simple\n")
    lines = _lines(
        tmp_path,
        # pip ignores every other option on an include line
        "-r inner.txt --index-url https://ignored/simple\n--extra-index-url https://outer/simple\n",
    )
    opts = index_options(lines)
    assert opts.index_url is None
    assert opts.extra_index_urls == ("https://inner/simple", "https://outer/simple")


def test_find_links_are_resolved_like_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub" / "wheels").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "sub" / "r.txt",
        "-f wheels\n"  # exists next to the file: made absolute
        "--find-links not-there\n"  # does not: left for pip to take from the cwd
        "--find-links https://h/links -f ignored\n"  # pip uses only a line's first
        f"-f {tmp_path}/sub/wheels\n",
    )
    opts = index_options(read_requirements("sub/r.txt"))
    assert opts.find_links == (
        str(tmp_path / "sub" / "wheels"),
        "not-there",
        "https://h/links",
        f"{tmp_path}/sub/wheels",
    )
    assert opts.has_index_options


# --- requirement names ------------------------------------------------------------------------


def test_requirement_names(tmp_path: Path) -> None:
    write(tmp_path / "c.txt", "Constrained_Only==1\nRequests==2.0\n")
    lines = _lines(
        tmp_path,
        "Requests>=2\nZope.Interface\nrequests[socks]\n"
        "direct @ https://h/d.zip\n-e .\n./path\n-c c.txt\n",
    )
    assert requirement_names(lines) == ["requests", "zope-interface"]
    assert requirement_names(lines, include_constraints=True) == [
        "requests",
        "zope-interface",
        "constrained-only",
    ]


# --- copies for the guard ---------------------------------------------------------------------


def guard(url: str) -> str:
    return "http://127.0.0.1:9/" + url.replace("://", "/")


def test_rewrite_without_index_urls_copies_nothing(tmp_path: Path) -> None:
    write(tmp_path / "inner.txt", "--find-links wheels\n--no-index\npkg\n")
    path = write(tmp_path / "r.txt", "-r inner.txt\npkg --index-url https://ignored/simple\n")
    workdir = tmp_path / "work"
    assert rewrite_for_guard([str(path)], guard, workdir) == {}
    assert not workdir.exists() or not any(workdir.iterdir())


def test_rewrite_copies_the_whole_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN", "s3cret")
    project = tmp_path / "project"
    (project / "reqs" / "wheels").mkdir(parents=True)
    write(project / "reqs" / "base.txt", "base==1.0\n-c ../constraints.txt\n")
    write(project / "constraints.txt", "base==1.0\n--extra-index-url https://c/simple\n")
    top_text = (
        "# top\n"
        "--index-url \\\n"
        "    https://user:${TOKEN}@main.example/simple\n"
        "-r reqs/base.txt\n"
        "-f reqs/wheels --find-links=missing-dir\n"
        "./local/pkg\n"
        "-e .\n"
        "pkg==2.0 \\\n"
        f"    --hash={SHA_A}\n"
        "--trusted-host main.example --extra-index-url https://x/simple  # extra\n"
    )
    top = write(project / "top.txt", top_text)
    monkeypatch.chdir(project)
    workdir = tmp_path / "work"

    copies = rewrite_for_guard(["top.txt"], guard, workdir)

    assert list(copies) == ["top.txt"]
    copy = Path(copies["top.txt"])
    assert copy.is_absolute() and copy.is_relative_to(workdir) and copy.name == "top.txt"
    raw = copy.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: pip ignores any coding comment then
    copy_lines = raw[3:].decode("utf-8").splitlines()
    original_lines = top_text.splitlines()
    assert len(copy_lines) == len(original_lines)
    # untouched lines are kept as written, relative paths included
    for number in (1, 6, 7, 8, 9):
        assert copy_lines[number - 1] == original_lines[number - 1]
    assert copy_lines[2] == ""  # the continuation of the rewritten --index-url line

    lines = read_requirements(copy)
    by_line = {rl.line: rl for rl in lines if rl.path == str(copy)}
    assert by_line[2].options == (
        ("--index-url", "http://127.0.0.1:9/https/user:s3cret@main.example/simple"),
    )
    base_copy = by_line[4].options[0][1]
    assert by_line[4].options == (("--requirement", base_copy),)
    assert base_copy is not None and Path(base_copy).is_absolute()
    assert Path(base_copy).is_relative_to(workdir)
    assert by_line[5].options == (
        ("--find-links", str(project / "reqs" / "wheels")),
        ("--find-links", "missing-dir"),
    )
    assert by_line[6].spec == "./local/pkg"
    assert (by_line[7].kind, by_line[7].spec) == ("editable", ".")
    assert by_line[8].hashes == (SHA_A,)
    assert by_line[10].options == (
        ("--trusted-host", "main.example"),
        ("--extra-index-url", "http://127.0.0.1:9/https/x/simple"),
    )

    # the included files were copied too, their includes pointing at copies
    base_lines = [rl for rl in lines if rl.path == base_copy]
    cons_copy = base_lines[1].options[0][1]
    assert base_lines[1].options == (("--constraint", cons_copy),)
    assert cons_copy is not None and Path(cons_copy).is_relative_to(workdir)
    cons_lines = [rl for rl in lines if rl.path == cons_copy]
    assert [rl.constraint for rl in cons_lines] == [True, True]
    assert cons_lines[1].options == (("--extra-index-url", "http://127.0.0.1:9/https/c/simple"),)

    # what pip will make of the copy, everything together
    assert index_options(lines) == IndexOptions(
        index_url="http://127.0.0.1:9/https/user:s3cret@main.example/simple",
        extra_index_urls=(
            "http://127.0.0.1:9/https/c/simple",
            "http://127.0.0.1:9/https/x/simple",
        ),
        no_index=False,
        find_links=(str(project / "reqs" / "wheels"),),
        has_index_options=True,
    )
    assert top.read_text() == top_text  # the original is left alone


def test_rewrite_shares_copies_between_top_level_files(tmp_path: Path) -> None:
    write(tmp_path / "index.txt", "--index-url https://i/simple\n")
    write(tmp_path / "b.txt", "-r index.txt\n")
    a = write(tmp_path / "a.txt", "-r index.txt\n-r b.txt\n")
    plain = write(tmp_path / "plain.txt", "pkg\n")
    workdir = tmp_path / "work"
    copies = rewrite_for_guard([str(a), str(plain), str(tmp_path / "b.txt")], guard, workdir)
    assert set(copies) == {str(a), str(tmp_path / "b.txt")}
    index_copies = {
        rl.options[0][1]
        for path in copies.values()
        for rl in read_requirements(path)
        if rl.options and rl.options[0][0] == "--requirement" and "index.txt" in str(rl.options)
    }
    assert len(index_copies) == 1  # one copy of index.txt serves every include of it
    assert len(list(workdir.iterdir())) == 3


def test_rewrite_keeps_a_latin1_file_readable(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.txt",
        b"# -*- coding: latin-1 -*-\n# caf\xe9\n--index-url https://i/simple\npkg\n",
    )
    copy = rewrite_for_guard([str(path)], guard, tmp_path / "work")[str(path)]
    assert "caf\u00e9" in Path(copy).read_text(encoding="utf-8-sig")
    assert [rl.spec for rl in read_requirements(copy)] == ["", "pkg"]


@pytest.mark.parametrize(
    ("rewritten", "why"),
    [
        ("http://127.0.0.1:9/ #oops", "comment"),
        ("http://127.0.0.1:9/${HOME}", "${VAR}"),
        ("http://127.0.0.1:9/\nx", "span lines"),
    ],
)
def test_rewrite_refuses_what_pip_could_not_read_back(
    tmp_path: Path, rewritten: str, why: str
) -> None:
    path = write(tmp_path / "r.txt", "pkg\n--index-url https://i/simple\n")
    with pytest.raises(InputError) as info:
        rewrite_for_guard([str(path)], lambda url: rewritten, tmp_path / "work")
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert why in info.value.message


def test_rewrite_refuses_a_find_link_that_would_resolve_next_to_the_copy(tmp_path: Path) -> None:
    # "../reqfile-0" does not exist next to the original, but does next to the copy
    path = write(tmp_path / "p" / "r.txt", "--index-url https://i/simple\n-f ../reqfile-0\n")
    with pytest.raises(InputError) as info:
        rewrite_for_guard([str(path)], guard, tmp_path / "work")
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert "--find-links '../reqfile-0'" in info.value.message


def test_rewrite_propagates_reading_errors(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "--index-url https://i/simple\n-r a.txt\n")
    with pytest.raises(InputError, match="cycle"):
        rewrite_for_guard([str(tmp_path / "a.txt")], guard, tmp_path / "work")


# --- agreement with pip's own parser ----------------------------------------------------------


def test_agrees_with_pips_own_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Differential check against pip's ``req_file`` on edge cases; skipped without pip."""
    req_file = pytest.importorskip("pip._internal.req.req_file")
    monkeypatch.setenv("IDX", "https://env.example/simple")
    write(tmp_path / "inner.txt", "inner==1\n")
    path = write(
        tmp_path / "r.txt",
        "# comment\n"
        "a==1 \\\n"
        f"  --hash={SHA_A}\n"
        "-i ${IDX}\n"
        "--extra-index https://x/simple --pre\n"
        "b ; python_version >= '3' --hash sha256:" + "b" * 64 + "\n"
        "git+https://h/r.git#egg=r\n"
        "-e ./proj -C k=v\n"
        "-e ./first --editable=./second\n"
        "--no-i --find=./w -ihttps://i/simple --pref\n"
        "-r inner.txt\n"
        "c \\\\\n"
        "  ==1.0\n"
        "-f 'quoted dir' stray\n"
        "e @ https://h/e.zip;python_version>'3'\n",
    )
    ours = read_requirements(path)
    parser = req_file.RequirementsFileParser(None, req_file.get_line_parser(None))
    theirs = list(parser.parse(str(path), False))
    assert [(rl.path, rl.line) for rl in ours if _include_of_line(rl) is None] == [
        (pl.filename, pl.lineno) for pl in theirs
    ]
    for rl, pl in zip([rl for rl in ours if _include_of_line(rl) is None], theirs, strict=True):
        assert rl.spec == (pl.args.strip() or (pl.opts.editables[0] if pl.opts.editables else ""))
        assert (rl.kind == "editable") == bool(pl.opts.editables and not pl.args)
        values = dict(rl.options)
        if rl.kind == "option":
            assert values.get("--index-url") == pl.opts.index_url
            assert [v for n, v in rl.options if n == "--extra-index-url"] == (
                pl.opts.extra_index_urls
            )
            assert [v for n, v in rl.options if n == "--find-links"] == pl.opts.find_links
            assert ("--pre" in values) == bool(pl.opts.pre)
        else:
            pip_hashes = sorted(
                f"{algo}:{digest}"
                for algo, digests in (pl.opts.hashes or {}).items()
                for digest in digests
            )
            assert sorted(rl.hashes) == pip_hashes


def _include_of_line(rl: ReqLine) -> str | None:
    if rl.kind != "option":
        return None
    for name, value in rl.options:
        if name in ("--requirement", "--constraint"):
            return value
    return None
