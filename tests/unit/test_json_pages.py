"""PEP 691 JSON pages: what the parser accepts and refuses, and what the renderer writes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_pages import (
    PAGE_URL,
    SERIAL,
    identity,
    json_file,
    json_page,
    only_file,
    parse_json,
    parse_recorded,
    proxied,
)

from safe_pip.errors import MalformedPage
from safe_pip.index.model import OneHash
from safe_pip.index.pages import DistFile, ProjectPage, render_json


def test_json_zero_files_is_valid() -> None:
    page = parse_json(json_page([], versions=[]))
    assert page.files == ()
    assert page.versions == ()
    assert page.serials == {}


def test_json_relative_url_and_fragment_hash() -> None:
    page = parse_json(
        json_page(
            [
                json_file(
                    url="../../packages/f-1.0.tar.gz#sha256=" + "CD" * 32,
                    hashes={"SHA256": "CD" * 32, "md5": "ef" * 16},
                )
            ]
        )
    )
    dist = only_file(page)
    assert dist.url == "https://index.example/packages/f-1.0.tar.gz"
    assert dist.hashes == {"sha256": "cd" * 32, "md5": "ef" * 16}  # lower-cased


def test_json_one_hash_is_kept_compact_and_reads_as_a_dict() -> None:
    page = parse_json(
        json_page(
            [
                json_file(hashes={"sha256": "AB" * 32}, **{"core-metadata": {"sha256": "0c" * 32}}),
                json_file(filename="f-2.0.tar.gz", hashes={"sha256": "abc"}),
            ]
        )
    )
    first, odd = page.files
    assert isinstance(first.hashes, OneHash) and isinstance(first.core_metadata, OneHash)
    assert first.hashes == {"sha256": "ab" * 32}
    expected: dict[str, str] = {"sha256": "ab" * 32}
    assert expected.__eq__(first.hashes) is NotImplemented  # so Python asks OneHash
    assert first.hashes != {"sha256": "ab" * 31 + "ac"} and first.hashes != {"md5": "ab" * 32}
    assert dict(first.core_metadata) == {"sha256": "0c" * 32}
    assert "sha256" in first.hashes and "md5" not in first.hashes and len(first.hashes) == 1
    with pytest.raises(KeyError):
        first.hashes["md5"]
    assert repr(first.hashes) == repr({"sha256": "ab" * 32})
    assert odd.hashes == {"sha256": "abc"} and type(odd.hashes) is dict  # no bytes form
    document = json.loads(render_json(page, rewrite_url=identity, serial=None))
    assert document["files"][0]["hashes"] == {"sha256": "ab" * 32}
    assert document["files"][0]["core-metadata"] == {"sha256": "0c" * 32}


def test_json_fragment_hash_contradicting_hashes() -> None:
    entry = json_file(url="f-1.0.tar.gz#sha256=" + "cd" * 32, hashes={"sha256": "ab" * 32})
    with pytest.raises(MalformedPage, match="disagree on sha256"):
        parse_json(json_page([entry]))


@pytest.mark.parametrize(
    ("yanked", "expected"),
    [
        (False, (False, None)),
        (None, (False, None)),
        (True, (True, None)),
        ("security hole", (True, "security hole")),
        ("", (True, None)),  # outside PEP 691; taken as yanked, the safe side
    ],
)
def test_json_yanked(yanked: object, expected: tuple[bool, str | None]) -> None:
    dist = only_file(parse_json(json_page([json_file(yanked=yanked)])))
    assert (dist.yanked, dist.yanked_reason) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"core-metadata": True}, True),
        ({"core-metadata": False}, None),
        ({"core-metadata": {}}, True),
        ({"core-metadata": {"sha256": "AB" * 32}}, {"sha256": "ab" * 32}),
        ({"dist-info-metadata": {"sha256": "ab" * 32}}, {"sha256": "ab" * 32}),
        ({"data-dist-info-metadata": True}, True),
        # PEP 714: core-metadata wins whenever present, even when false.
        ({"core-metadata": False, "dist-info-metadata": True}, None),
        (
            {"core-metadata": {"sha256": "ab" * 32}, "dist-info-metadata": True},
            {"sha256": "ab" * 32},
        ),
        ({"core-metadata": None, "dist-info-metadata": True}, True),
    ],
)
def test_json_core_metadata(fields: dict[str, Any], expected: object) -> None:
    assert only_file(parse_json(json_page([json_file(**fields)]))).core_metadata == expected


def test_json_optional_fields() -> None:
    entry = json_file(
        **{
            "requires-python": ">=3.9",
            "gpg-sig": False,
            "upload-time": "2024-02-01T08:03:44.777001Z",
            "size": 0,
            "provenance": None,
            "future-key": {"anything": [1, 2]},
        }
    )
    dist = only_file(parse_json(json_page([entry])))
    assert dist.requires_python == ">=3.9"
    assert dist.gpg_sig is False
    assert dist.upload_time == "2024-02-01T08:03:44.777001Z"
    assert dist.size == 0


def test_json_name_falls_back_to_url() -> None:
    body = json.dumps({"meta": {"api-version": "1.0"}, "files": []}).encode()
    assert parse_json(body).name == "frobnicate"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[]", "JSON page is a list, not an object"),
        (b'"files"', "not an object"),
        (b'{"meta": {"api-version": "1.0"}, "files": [], "files": []}', "duplicate key"),
        (b'{"meta": {"api-version": "1.0"}, "files": [{"size": NaN}]}', "invalid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
        (json.dumps({"files": []}).encode(), "no meta object"),
        (json.dumps({"meta": [], "files": []}).encode(), "no meta object"),
        (json.dumps({"meta": {}, "files": []}).encode(), "no meta.api-version"),
        (json_page(meta={"api-version": 1.1}), "bad api-version"),
        (json_page(meta={"api-version": "v1"}), "bad api-version"),
        (json_page(meta={"api-version": "2.0"}), "unsupported api-version '2.0'"),
        (json_page(meta={"api-version": "0.9"}), "unsupported api-version"),
        (json.dumps({"meta": {"api-version": "1.0"}, "files": {}}).encode(), "files is not a list"),
        (json.dumps({"meta": {"api-version": "1.0"}}).encode(), "files is not a list"),
        (json_page(name=7), "name is 7, not a string"),
        (json_page(versions="1.0"), "versions is not a list of strings"),
        (json_page(versions=[1]), "versions is not a list of strings"),
        (json_page(["f.tar.gz"]), r"files\[0\] is not an object"),
        (json_page([{"url": "https://files.example/f"}]), r"files\[0\] has no filename"),
        (json_page([json_file(filename="")]), "has no filename"),
        (json_page([json_file(filename=3)]), "has no filename"),
        (json_page([json_file(filename="../evil.whl")]), "bad filename"),
        (json_page([json_file(url=None)]), r"files\[0\] \(frobnicate-1.0.tar.gz\) has no url"),
        (json_page([json_file(url="")]), "has no url"),
        (json_page([json_file(hashes=["sha256"])]), r"files\[0\].hashes is \['sha256'\]"),
        (json_page([json_file(hashes={"sha256": "xyz"})]), "bad sha256 digest 'xyz'"),
        (json_page([json_file(hashes={"sha256": 5})]), "bad sha256 digest 5"),
        (json_page([json_file(hashes={"sha-256": "ab"})]), "bad hash name 'sha-256'"),
        (json_page([json_file(**{"requires-python": 3})]), "requires-python is 3"),
        (json_page([json_file(yanked=1)]), "yanked is 1"),
        (json_page([json_file(**{"core-metadata": "true"})]), "core-metadata is 'true'"),
        (json_page([json_file(**{"core-metadata": {"sha256": "zz"}})]), "bad sha256 digest"),
        (json_page([json_file(**{"gpg-sig": "false"})]), "gpg-sig is 'false'"),
        (json_page([json_file(**{"upload-time": 1700000000})]), "upload-time is 1700000000"),
        (json_page([json_file(size="12")]), "size is '12'"),
        (json_page([json_file(size=-1)]), "size is -1"),
        (json_page([json_file(size=True)]), "size is True"),
        (json_page([json_file(size=1.5)]), "size is 1.5"),
    ],
)
def test_json_malformed(body: bytes, match: str) -> None:
    with pytest.raises(MalformedPage, match=match) as info:
        parse_json(body)
    assert info.value.url == PAGE_URL
    assert str(info.value).startswith(f"malformed index page {PAGE_URL}: ")


# --------------------------------------------------------------------------- rendering


def test_render_json_shape() -> None:
    page = parse_recorded("index-frobnicate.json")
    document = json.loads(render_json(page, rewrite_url=proxied, serial=SERIAL))
    assert document["meta"] == {"api-version": "1.1", "_last-serial": SERIAL}
    assert document["name"] == "frobnicate"
    assert document["versions"] == ["0.9", "1.0.0", "1.1.0", "1.1.1"]
    old, wheel = document["files"][:2]
    assert old == {
        "filename": "frobnicate-0.9.tar.gz",
        "url": "http://127.0.0.1:8080/files/frobnicate-0.9.tar.gz",
        "hashes": {"sha256": "b1e2096b876bc4602b97acf144a21b8eb7cb49121dbb90c99acfd40a1c33b369"},
        "yanked": False,
        "upload-time": "2019-11-03T18:02:11.412090Z",
        "size": 18233,
    }
    metadata = {"sha256": "6cf8af0b00050c5e19f5f524f0bf54eaa5cb1c852d0b78726f8feb0950785d72"}
    assert wheel["core-metadata"] == metadata
    assert "dist-info-metadata" not in wheel  # PEP 714: pip 22.3-23.1 crash on it in JSON
    assert wheel["requires-python"] == ">=3.8"
    assert document["files"][3]["yanked"] == (
        "Broken import on Windows, use 1.1.1 (see issue #214 & #215)"
    )


@pytest.mark.parametrize("count", [0, 1, 256, 257, 600])
def test_render_json_of_many_files_is_one_compact_document(count: int) -> None:
    files = tuple(
        DistFile(f"x-{i}.tar.gz", f"https://f.example/\u00e9/x-{i}.tar.gz", {"sha256": "ab" * 32})
        for i in range(count)
    )
    body = render_json(ProjectPage("x", files, versions=("1",)), rewrite_url=identity, serial=3)
    document = json.loads(body)
    assert [f["filename"] for f in document["files"]] == [f.filename for f in files]
    assert json.dumps(document, separators=(",", ":")).encode("ascii") == body


def test_render_json_without_serial_or_versions() -> None:
    page = ProjectPage(name="x", files=(DistFile("x-1.tar.gz", "https://f.example/x-1.tar.gz"),))
    document = json.loads(render_json(page, rewrite_url=identity, serial=None))
    assert document["meta"] == {"api-version": "1.1"}
    assert "versions" not in document
    assert document["files"] == [
        {
            "filename": "x-1.tar.gz",
            "url": "https://f.example/x-1.tar.gz",
            "hashes": {},
            "yanked": False,
        }
    ]
