"""Index pages as received: recorded pages from real indexes and mirrors, Content-Type
dispatch, serials, round trips through both formats, the fingerprint, and pip reading what we
render. Format details are in test_json_pages.py and test_html_pages.py, which share the
helpers here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest

from safe_pip.errors import MalformedPage
from safe_pip.index.fields import split_file_url
from safe_pip.index.pages import (
    HTML_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    DistFile,
    InconsistentSerials,
    ProjectPage,
    content_fingerprint,
    page_serial,
    parse_page,
    render_html,
    render_json,
)

DATA = Path(__file__).parent.parent / "data" / "pages"
PAGE_URL = "https://index.example/simple/frobnicate/"
SERIAL = 23456789


def identity(url: str) -> str:
    return url


def load(name: str) -> tuple[bytes, str, str, dict[str, str]]:
    """A recorded page: body, Content-Type, URL and headers (from its sidecar)."""
    sidecar = json.loads((DATA / f"{name}.headers.json").read_text(encoding="utf-8"))
    headers: dict[str, str] = sidecar["headers"]
    content_type = next(v for k, v in headers.items() if k.lower() == "content-type")
    return (DATA / name).read_bytes(), content_type, sidecar["url"], headers


def parse_recorded(name: str) -> ProjectPage:
    body, content_type, url, headers = load(name)
    return parse_page(body, content_type=content_type, url=url, headers=headers)


def json_page(files: list[Any] | None = None, **top: Any) -> bytes:
    document: dict[str, Any] = {
        "meta": {"api-version": "1.1"},
        "name": "frobnicate",
        "files": files if files is not None else [],
    }
    document.update(top)
    return json.dumps(document).encode()


def json_file(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": "frobnicate-1.0.tar.gz",
        "url": "https://files.example/p/frobnicate-1.0.tar.gz",
        "hashes": {"sha256": "ab" * 32},
    }
    entry.update(fields)
    return entry


def parse_json(body: bytes, headers: Mapping[str, str] | None = None) -> ProjectPage:
    return parse_page(body, content_type=JSON_CONTENT_TYPE, url=PAGE_URL, headers=headers)


def html_page(anchors: str, extra: str = "") -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>Links for frobnicate</title></head>"
        f"<body>{anchors}</body></html>{extra}"
    ).encode()


def parse_html(body: bytes, headers: Mapping[str, str] | None = None) -> ProjectPage:
    return parse_page(body, content_type=HTML_CONTENT_TYPE, url=PAGE_URL, headers=headers)


def only_file(page: ProjectPage) -> DistFile:
    assert len(page.files) == 1
    return page.files[0]


# --------------------------------------------------------------------------- recorded pages


def test_recorded_json_page() -> None:
    page = parse_recorded("index-frobnicate.json")
    assert page.fmt == "json"
    assert page.name == "frobnicate"
    assert page.api_version == "1.3"
    assert page.versions == ("0.9", "1.0.0", "1.1.0", "1.1.1")
    assert page.serials == {"header": SERIAL, "json-meta": SERIAL}  # lower-case header name
    assert page_serial(page, PAGE_URL) == SERIAL
    assert [f.filename for f in page.files] == [
        "frobnicate-0.9.tar.gz",
        "frobnicate-1.0.0-py3-none-any.whl",
        "frobnicate-1.0.0.tar.gz",
        "frobnicate-1.1.0-py3-none-any.whl",
        "frobnicate-1.1.0.tar.gz",
        "frobnicate-1.1.1-py3-none-any.whl",
        "frobnicate-1.1.1.tar.gz",
    ]
    old, wheel, _, yanked_wheel, yanked_sdist, _, _ = page.files
    assert old.requires_python is None  # "requires-python": null
    assert old.core_metadata is None  # "core-metadata": false
    assert old.size == 18233
    assert old.upload_time == "2019-11-03T18:02:11.412090Z"
    assert old.url.startswith("https://files.example/packages/08/23/")
    assert old.url.endswith("/frobnicate-0.9.tar.gz")
    assert wheel.requires_python == ">=3.8"
    assert wheel.hashes == {
        "sha256": "62e35a28c53145f66be00857b0bb044cd86e7281d2838fdf65146bdb60592a71"
    }
    assert wheel.core_metadata == {
        "sha256": "6cf8af0b00050c5e19f5f524f0bf54eaa5cb1c852d0b78726f8feb0950785d72"
    }
    assert not wheel.yanked and wheel.yanked_reason is None
    reason = "Broken import on Windows, use 1.1.1 (see issue #214 & #215)"
    assert yanked_wheel.yanked and yanked_wheel.yanked_reason == reason
    assert yanked_sdist.yanked and yanked_sdist.yanked_reason == reason


def test_recorded_html_page() -> None:
    page = parse_recorded("index-frobnicate.html")
    assert page.fmt == "html"
    assert page.name == "frobnicate"
    assert page.api_version == "1.3"
    assert page.versions is None
    assert page.serials == {"header": SERIAL, "html-comment": SERIAL}
    assert page_serial(page, PAGE_URL) == SERIAL
    assert len(page.files) == 7
    wheel = page.files[1]
    assert wheel.requires_python == ">=3.8"  # &gt; unescaped
    assert wheel.url == parse_recorded("index-frobnicate.json").files[1].url  # no fragment
    assert wheel.hashes == {
        "sha256": "62e35a28c53145f66be00857b0bb044cd86e7281d2838fdf65146bdb60592a71"
    }
    assert wheel.core_metadata == {
        "sha256": "6cf8af0b00050c5e19f5f524f0bf54eaa5cb1c852d0b78726f8feb0950785d72"
    }
    assert wheel.size is None and wheel.upload_time is None
    assert page.files[3].yanked_reason == (
        "Broken import on Windows, use 1.1.1 (see issue #214 & #215)"
    )
    assert page.files[5].requires_python == ">=3.8, !=3.9.0"


def test_recorded_json_and_html_pages_say_the_same() -> None:
    as_json = parse_recorded("index-frobnicate.json")
    as_html = parse_recorded("index-frobnicate.html")
    assert content_fingerprint(as_json) == content_fingerprint(as_html)
    without_pep700 = [dataclasses.replace(f, size=None, upload_time=None) for f in as_json.files]
    assert list(as_html.files) == without_pep700


def test_recorded_mirror_page_relative_urls_and_no_serial() -> None:
    page = parse_recorded("mirror-frobnicate.html")
    assert page.serials == {}
    assert page_serial(page, "https://mirror.example/simple/frobnicate/") is None
    assert page.api_version is None
    assert page.name == "frobnicate"
    for dist in page.files:
        assert dist.url.startswith("https://mirror.example/packages/")
        assert dist.url.endswith("/" + dist.filename)
        assert "#" not in dist.url and ".." not in dist.url
    origin = parse_recorded("index-frobnicate.html")
    # The mirror left out 0.9 but otherwise lists the same content.
    assert content_fingerprint(page) == content_fingerprint(
        dataclasses.replace(origin, files=origin.files[1:])
    )


def test_recorded_mirror_json_page_string_serial() -> None:
    page = parse_recorded("mirror-frobnicate.json")
    # the only serial is meta._last-serial, written as a JSON string by bandersnatch
    assert page.serials == {"json-meta": 23456789}
    assert page_serial(page, "https://mirror.example/simple/frobnicate/") == 23456789
    assert page.api_version == "1.0"
    for dist in page.files:
        assert dist.url.startswith("https://mirror.example/packages/")
        assert dist.url.endswith("/" + dist.filename)
    as_html = parse_recorded("mirror-frobnicate.html")
    # the same files; the JSON page keeps yanks but not their reasons
    without_reasons = [dataclasses.replace(f, yanked_reason=None) for f in as_html.files]
    assert [dataclasses.replace(f, yanked_reason=None) for f in page.files] == without_reasons


def test_recorded_directory_listing_mirror() -> None:
    page = parse_recorded("autoindex-frobnicate.html")
    assert [f.filename for f in page.files] == [  # "../" is no file
        "frobnicate-1.0.0-py3-none-any.whl",
        "frobnicate-1.0.0.tar.gz",
        "frobnicate-1.1.1-py3-none-any.whl",
        "frobnicate-1.1.1.tar.gz",
        # the anchor text is shortened to "...x86..>"; the name comes from the URL, as in pip
        "frobnicate-1.1.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ]
    assert page.files[0].url == (
        "https://mirror.example/simple/frobnicate/frobnicate-1.0.0-py3-none-any.whl"
    )
    assert all(f.hashes == {} for f in page.files)
    assert page.serials == {}


def test_recorded_proxy_mirror_pages_serial_only_in_json() -> None:
    """Captured from the proxy mirror reachable from the project's machines (hosts replaced):
    the serial only as a JSON string, none in the HTML or the headers; no metadata files."""
    url = "https://proxy.example/simple/iniconfig/"
    page = parse_recorded("proxy-iniconfig.json")
    assert page.serials == {"json-meta": 41901840}
    assert page_serial(page, url) == 41901840
    assert page.api_version == "1.1"
    as_html = parse_recorded("proxy-iniconfig.html")
    assert as_html.serials == {}
    assert page_serial(as_html, url) is None
    assert len(page.files) == len(as_html.files) == 18
    assert content_fingerprint(page) == content_fingerprint(as_html)
    for dist in page.files:
        assert dist.url.startswith("https://files.example/packages/")
        assert set(dist.hashes) == {"sha256"}
        assert dist.core_metadata is None  # the mirror serves no PEP 658 files


def test_recorded_devpi_pages_serial_only_in_the_header() -> None:
    """devpi-server's mirror index (written after its view code): X-PYPI-LAST-SERIAL, JSON of
    API 1.0 without PEP 700 fields, relative ``+f`` links, a refresh form in the HTML."""
    for name in ("devpi-frobnicate.json", "devpi-frobnicate.html"):
        page = parse_recorded(name)
        assert page.serials == {"header": 23456789}, name
        assert page_serial(page, "https://devpi.example/root/pypi/+simple/frobnicate/") == 23456789
        assert [f.filename for f in page.files] == [
            "frobnicate-1.0.0-py3-none-any.whl",
            "frobnicate-1.0.0.tar.gz",
            "frobnicate-1.1.1-py3-none-any.whl",
            "frobnicate-1.1.1.tar.gz",
        ], name
        for dist in page.files:
            assert dist.url.startswith("https://devpi.example/root/pypi/+f/"), dist.url
            assert dist.requires_python == ">=3.8"
            assert dist.upload_time is None and dist.size is None
    assert content_fingerprint(parse_recorded("devpi-frobnicate.json")) == content_fingerprint(
        parse_recorded("devpi-frobnicate.html")
    )


def test_recorded_plain_index_page_has_nothing_to_prove_with() -> None:
    """pypiserver's page (HTML only, whatever is asked): no serial, relative package links."""
    page = parse_recorded("plain-frobnicate.html")
    assert page.serials == {}
    assert page_serial(page, "https://plain.example/simple/frobnicate/") is None
    assert len(page.files) == 4
    for dist in page.files:
        assert dist.url == f"https://plain.example/packages/{dist.filename}"
        assert set(dist.hashes) == {"sha256"}


def test_recorded_pages_name_only_example_hosts() -> None:
    for path in DATA.iterdir():
        text = path.read_text(encoding="utf-8")
        for word in ("https://", "http://"):
            for piece in text.split(word)[1:]:
                host = piece.split("/", 1)[0]
                assert host.endswith(".example"), (path.name, host)


# --------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        (JSON_CONTENT_TYPE, "json"),
        ("application/vnd.pypi.simple.v1+json; charset=utf-8", "json"),
        ("Application/VND.PyPI.Simple.v1+JSON", "json"),
        (HTML_CONTENT_TYPE, "html"),
        ("text/html", "html"),
        ("text/html; charset=UTF-8", "html"),
        ('text/html;charset="utf-8"', "html"),
    ],
)
def test_content_type_dispatch(content_type: str, fmt: str) -> None:
    body = json_page() if fmt == "json" else html_page("")
    page = parse_page(body, content_type=content_type, url=PAGE_URL)
    assert page.fmt == fmt
    assert page.files == ()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "",
        "application/vnd.pypi.simple.latest+json",
        "application/vnd.pypi.simple.v2+json",
        "application/vnd.pypi.simple.v1+xml",
        "text/htmlx",
    ],
)
def test_unexpected_content_type(content_type: str) -> None:
    with pytest.raises(MalformedPage, match="unexpected Content-Type") as info:
        parse_page(json_page(), content_type=content_type, url=PAGE_URL)
    assert info.value.url == PAGE_URL


def test_charset_from_content_type() -> None:
    body = html_page('<a href="f-1.0.tar.gz" data-yanked="café">f</a>').decode()
    page = parse_page(
        body.encode("latin-1"), content_type="text/html; charset=ISO-8859-1", url=PAGE_URL
    )
    assert only_file(page).yanked_reason == "café"


def test_utf8_is_the_default_and_bom_is_ignored() -> None:
    body = "\ufeff" + html_page('<a href="f-1.0.tar.gz" data-yanked="café">f</a>').decode()
    page = parse_page(body.encode("utf-8"), content_type="text/html", url=PAGE_URL)
    assert only_file(page).yanked_reason == "café"
    page = parse_json(b"\xef\xbb\xbf" + json_page())
    assert page.files == ()


def test_undecodable_body() -> None:
    with pytest.raises(MalformedPage, match="not valid utf-8"):
        parse_page(b"<html>\xff\xfe</html>", content_type="text/html", url=PAGE_URL)


def test_unknown_charset() -> None:
    with pytest.raises(MalformedPage, match="unknown charset"):
        parse_page(html_page(""), content_type="text/html; charset=klingon", url=PAGE_URL)


# --------------------------------------------------------------------------- serials


@pytest.mark.parametrize(
    "value", ["abc", "-3", "1.5", "", " ", "1e3", "0x10", "+5", "１２", "12 13", "9" * 5000]
)
def test_bad_header_serial(value: str) -> None:
    with pytest.raises(MalformedPage, match="non-numeric serial .* in X-PyPI-Last-Serial"):
        parse_json(json_page(), headers={"X-PyPI-Last-Serial": value})


def test_bad_header_serial_message() -> None:
    with pytest.raises(MalformedPage) as info:
        parse_json(json_page(), headers={"x-pypi-last-serial": "abc"})
    assert info.value.reason == "non-numeric serial 'abc' in X-PyPI-Last-Serial"


def test_header_lookup_is_case_insensitive() -> None:
    for name in ("X-PyPI-Last-Serial", "x-pypi-last-serial", "X-PYPI-LAST-SERIAL"):
        headers = {"Content-Type": JSON_CONTENT_TYPE, name: " 17 "}
        assert parse_json(json_page(), headers=headers).serials == {"header": 17}
    assert parse_json(json_page(), headers={"ETag": '"x"'}).serials == {}


def test_conflicting_header_spellings() -> None:
    headers = {"X-PyPI-Last-Serial": "17", "x-pypi-last-serial": "18"}
    with pytest.raises(MalformedPage, match="conflicting X-PyPI-Last-Serial headers"):
        parse_json(json_page(), headers=headers)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        -1,
        1.5,
        [1],
        {"a": 1},
        "",
        " ",
        "abc",
        "-3",
        "+5",
        " 12",
        "12 ",
        "12\n",
        "1.5",
        "1e3",
        "0x10",
        "1_000",
        "١٢",  # Arabic-Indic digits: str.isdigit() and int() accept them
        "１２",  # fullwidth digits
        "9" * 5000,
    ],
)
def test_bad_json_serial(value: object) -> None:
    with pytest.raises(MalformedPage, match="non-numeric serial .* in meta._last-serial"):
        parse_json(json_page(meta={"api-version": "1.1", "_last-serial": value}))


def test_bad_json_serial_message() -> None:
    with pytest.raises(MalformedPage) as info:
        parse_json(json_page(meta={"api-version": "1.1", "_last-serial": "+5"}))
    assert info.value.reason == "non-numeric serial '+5' in meta._last-serial"


@pytest.mark.parametrize(("value", "serial"), [("37059094", 37059094), ("0", 0), ("007", 7)])
def test_json_serial_as_digit_string(value: str, serial: int) -> None:
    # bandersnatch mirrors write meta._last-serial as a JSON string of digits
    page = parse_json(json_page(meta={"api-version": "1.1", "_last-serial": value}))
    assert page.serials == {"json-meta": serial}
    assert page_serial(page, PAGE_URL) == serial


def test_json_string_serial_agrees_with_header() -> None:
    body = json_page(meta={"api-version": "1.1", "_last-serial": "12"})
    page = parse_json(body, headers={"X-PyPI-Last-Serial": "12"})
    assert page.serials == {"header": 12, "json-meta": 12}
    assert page_serial(page, PAGE_URL) == 12


def test_json_serial_zero_and_null() -> None:
    page = parse_json(json_page(meta={"api-version": "1.1", "_last-serial": 0}))
    assert page.serials == {"json-meta": 0}
    page = parse_json(json_page(meta={"api-version": "1.1", "_last-serial": None}))
    assert page.serials == {}


@pytest.mark.parametrize("value", ["abc", "-3", "1.5", "", "１２"])
def test_bad_comment_serial(value: str) -> None:
    with pytest.raises(MalformedPage, match="non-numeric serial .* in <!--SERIAL--> comment"):
        parse_html(html_page("", extra=f"<!--SERIAL {value}-->"))


def test_page_serial_agreeing_sources() -> None:
    page = parse_html(html_page("", "<!--SERIAL 12-->"), headers={"X-PyPI-Last-Serial": "12"})
    assert page.serials == {"header": 12, "html-comment": 12}
    assert page_serial(page, PAGE_URL) == 12


def test_page_serial_none() -> None:
    assert page_serial(ProjectPage(name="x", files=()), PAGE_URL) is None


def test_page_serial_disagreeing_json() -> None:
    body = json_page(meta={"api-version": "1.1", "_last-serial": 10})
    page = parse_json(body, headers={"X-PyPI-Last-Serial": "12"})
    with pytest.raises(InconsistentSerials) as info:
        page_serial(page, PAGE_URL)
    assert isinstance(info.value, MalformedPage)
    assert info.value.url == PAGE_URL
    assert info.value.serials == {"header": 12, "json-meta": 10}
    assert info.value.reason == "serials disagree: X-PyPI-Last-Serial 12, meta._last-serial 10"


def test_page_serial_disagreeing_html() -> None:
    page = parse_html(html_page("", "<!--SERIAL 9-->"), headers={"X-PyPI-Last-Serial": "12"})
    with pytest.raises(MalformedPage, match="X-PyPI-Last-Serial 12, <!--SERIAL--> comment 9"):
        page_serial(page, PAGE_URL)


# --------------------------------------------------------------------------- round trips


def proxied(url: str) -> str:
    return "http://127.0.0.1:8080/files/" + url.rsplit("/", 1)[-1]



def synthetic_page() -> ProjectPage:
    """Edge cases the recordings lack: odd characters, several hashes, gpg-sig, no hash."""
    return ProjectPage(
        name="Odd_Name.π",
        files=(
            DistFile(
                filename="odd_name-1.0-py3-none-any.whl",
                url="https://files.example/a%20b/odd_name-1.0-py3-none-any.whl?sig=1&x=2",
                hashes={"sha256": "ab" * 32, "sha512": "cd" * 64},
                requires_python=">=3.8,<4,!=3.9.*",
                yanked=True,
                yanked_reason='Don\'t use: "quoted" <tags> & π\nsecond line\r\nthird',
                core_metadata=True,
                gpg_sig=False,
                upload_time="2024-02-01T08:03:44Z",
                size=1,
            ),
            DistFile(
                filename="odd_name-0.1.zip",
                url="https://files.example/odd_name-0.1.zip",
                yanked=True,
                gpg_sig=True,
                core_metadata={"sha256": "ef" * 32},
            ),
            DistFile(
                filename="odd_name-0.0.tar.gz", url="http://files.example/odd_name-0.0.tar.gz"
            ),
        ),
        versions=("0.0", "0.1", "1.0"),
    )


ROUND_TRIP_PAGES: dict[str, Callable[[], ProjectPage]] = {
    "recorded-json": lambda: parse_recorded("index-frobnicate.json"),
    "recorded-html": lambda: parse_recorded("index-frobnicate.html"),
    "recorded-mirror": lambda: parse_recorded("mirror-frobnicate.html"),
    "recorded-autoindex": lambda: parse_recorded("autoindex-frobnicate.html"),
    "synthetic": synthetic_page,
    "empty": lambda: ProjectPage(name="empty", files=()),
}


def html_carried(dist: DistFile) -> DistFile:
    """What an HTML page can carry of a file: no PEP 700 fields, one hash per fragment."""
    fragment = next((n for n in ("sha256", "sha512") if n in dist.hashes), None)
    metadata = dist.core_metadata
    if isinstance(metadata, Mapping):
        metadata = {"sha256": metadata["sha256"]}
    return dataclasses.replace(
        dist,
        size=None,
        upload_time=None,
        hashes={fragment: dist.hashes[fragment]} if fragment else {},
        core_metadata=metadata,
    )


@pytest.mark.parametrize("serial", [None, 0, SERIAL])
@pytest.mark.parametrize("make", ROUND_TRIP_PAGES.values(), ids=ROUND_TRIP_PAGES.keys())
def test_json_round_trip(make: Callable[[], ProjectPage], serial: int | None) -> None:
    page = make()
    body = render_json(page, rewrite_url=identity, serial=serial)
    back = parse_page(body, content_type=JSON_CONTENT_TYPE, url=PAGE_URL)
    assert back.files == page.files
    assert back.name == page.name
    assert back.versions == page.versions
    assert page_serial(back, PAGE_URL) == serial
    assert content_fingerprint(back) == content_fingerprint(page)
    # Rendering is deterministic, so a re-render is byte-identical.
    assert render_json(back, rewrite_url=identity, serial=serial) == body


@pytest.mark.parametrize("serial", [None, 0, SERIAL])
@pytest.mark.parametrize("make", ROUND_TRIP_PAGES.values(), ids=ROUND_TRIP_PAGES.keys())
def test_html_round_trip(make: Callable[[], ProjectPage], serial: int | None) -> None:
    page = make()
    body = render_html(page, rewrite_url=identity, serial=serial)
    back = parse_page(body, content_type="text/html; charset=utf-8", url=PAGE_URL)
    assert list(back.files) == [html_carried(f) for f in page.files]
    assert page_serial(back, PAGE_URL) == serial
    assert back.api_version == "1.1"
    assert back.name == "frobnicate"  # HTML pages name the project only in their URL
    renamed = dataclasses.replace(back, name=page.name)
    assert render_html(renamed, rewrite_url=identity, serial=serial) == body


def test_round_trip_through_the_proxy_rewrite() -> None:
    page = parse_recorded("index-frobnicate.json")
    back = parse_json(render_json(page, rewrite_url=proxied, serial=None))
    assert [f.url for f in back.files] == [proxied(f.url) for f in page.files]
    assert content_fingerprint(back) == content_fingerprint(page)


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_ignores_urls_order_and_pep700() -> None:
    page = parse_recorded("index-frobnicate.json")
    moved = dataclasses.replace(
        page,
        files=tuple(
            dataclasses.replace(f, url="https://elsewhere.example/" + f.filename, size=None)
            for f in reversed(page.files)
        ),
        serials={"header": 1},
    )
    assert content_fingerprint(moved) == content_fingerprint(page)
    assert hash(content_fingerprint(page)) == hash(content_fingerprint(moved))


@pytest.mark.parametrize(
    "change",
    [
        {"yanked": True},
        {"yanked": True, "yanked_reason": "oops"},
        {"hashes": {"sha256": "00" * 32}},
        {"requires_python": ">=3.12"},
        {"filename": "frobnicate-0.9.zip"},
    ],
)
def test_fingerprint_sees_installer_relevant_changes(change: dict[str, Any]) -> None:
    page = parse_recorded("index-frobnicate.json")
    changed = dataclasses.replace(
        page, files=(dataclasses.replace(page.files[0], **change), *page.files[1:])
    )
    assert content_fingerprint(changed) != content_fingerprint(page)


def test_fingerprint_sees_added_and_removed_files() -> None:
    page = parse_recorded("index-frobnicate.json")
    assert content_fingerprint(dataclasses.replace(page, files=page.files[1:])) != (
        content_fingerprint(page)
    )


# --------------------------------------------------------------------------- pip reads us


def pip_links(body: bytes, content_type: str) -> list[Any]:
    collector = pytest.importorskip("pip._internal.index.collector")
    try:
        content = collector.IndexContent(
            body, content_type, encoding=None, url="http://127.0.0.1:8080/simple/odd-name/"
        )
        return list(collector.parse_links(content))
    except (AttributeError, TypeError) as exc:  # pip internals moved: not our regression
        pytest.skip(f"pip internals changed: {exc}")


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_pip_reads_rendered_pages(fmt: str) -> None:
    """The installed pip's own link parser sees the same files, hashes, yanks and metadata."""
    page = synthetic_page()
    if fmt == "json":
        body = render_json(page, rewrite_url=identity, serial=5)
        links = pip_links(body, JSON_CONTENT_TYPE)
    else:
        body = render_html(page, rewrite_url=identity, serial=5)
        links = pip_links(body, HTML_CONTENT_TYPE)
    assert [link.filename for link in links] == [
        "odd_name-1.0-py3-none-any.whl",
        "odd_name-0.1.zip",
        "odd_name-0.0.tar.gz",
    ]
    first, second, third = links
    assert first.yanked_reason == page.files[0].yanked_reason
    assert second.yanked_reason == ""  # yanked without a reason
    assert third.yanked_reason is None
    assert first.requires_python == ">=3.8,<4,!=3.9.*"
    assert first.metadata_file_data is not None and first.metadata_file_data.hashes is None
    assert second.metadata_file_data.hashes == {"sha256": "ef" * 32}
    assert third.metadata_file_data is None
    assert first.is_hash_allowed(None) is False
    assert first.as_hashes().is_hash_allowed("sha256", hex_digest="ab" * 32)


@pytest.mark.parametrize(
    "href",
    [
        "https://files.example/packages/ab/cd/frobnicate-1.0-py3-none-any.whl",
        "https://files.example/packages/frobnicate-1.0.tar.gz#sha256=" + "ab" * 32,
        "HTTPS://files.example/packages/x.whl",
        "https://files.example/a/../b/./x.whl",
        "https://files.example/x.whl?token=1",
        "https://files.example/x.whl;params",
        "https://[::1]:8080/x.whl",
        "https://user:pw@files.example:443/x%20y.whl",
        "https://files.example/x y.whl",
        "https://files.example/caf\u00e9.whl",
        "https://files.example",
        "//files.example/x.whl",
        "../../packages/x.whl",
        "/packages/x.whl",
        "x.whl#md5=" + "0" * 32,
        "  https://files.example/x.whl  ",
        "http://files.example/x.whl",
        "ftp://files.example/x.whl",
        "https://files.example/%2e%2e/x.whl",
        "https://files.example//double//x.whl",
        "https://files.example:/x.whl",
        "https://files.example/x.whl%23notafragment",
        "https://files.example/a:b@c/x.whl",
    ],
)
def test_file_urls_are_resolved_as_urljoin_resolves_them(href: str) -> None:
    """Plain absolute URLs skip urljoin (the costliest step on a page of thousands of files):
    the result must be the one urljoin and urldefrag give, whatever the href."""
    assert split_file_url(PAGE_URL, href) == tuple(urldefrag(urljoin(PAGE_URL, href.strip())))


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_recorded_project_status_pep792(fmt: str) -> None:
    archived = parse_recorded(f"archived-frobnicate.{fmt}")
    assert archived.status == "archived"
    assert archived.status_reason == "Superseded by frobnicate2; no further releases."
    assert len(archived.files) == 7
    quarantined = parse_recorded(f"quarantined-frobnicate.{fmt}")
    assert (quarantined.status, quarantined.status_reason) == ("quarantined", None)
    assert quarantined.files == ()
    assert parse_recorded(f"index-frobnicate.{fmt}").status is None  # no marker: active


@pytest.mark.parametrize(
    "value", [None, "archived", ["archived"], {"status": 3}, {"status": ""}, {"reason": "x"}]
)
def test_json_project_status_unreadable_is_unknown_not_malformed(value: object) -> None:
    body = {"meta": {"api-version": "1.4"}, "name": "f", "files": [], "project-status": value}
    page = parse_page(json.dumps(body).encode(), content_type=JSON_CONTENT_TYPE, url=PAGE_URL)
    assert page.status is None
