"""PEP 503 HTML pages: what the parser reads of them, and what the renderer writes."""

from __future__ import annotations

import pytest
from test_pages import (
    SERIAL,
    html_page,
    identity,
    only_file,
    parse_html,
    parse_recorded,
    proxied,
)

from safe_pip.errors import MalformedPage
from safe_pip.index.pages import DistFile, ProjectPage, render_html


def test_html_attributes() -> None:
    anchors = (
        '<a href="/p/a-1.0.tar.gz#sha256=' + "AB" * 32 + '" data-requires-python="&gt;=3.8,&lt;4"'
        ' data-yanked data-core-metadata="true" data-gpg-sig="true">a-1.0.tar.gz</a>'
        '<A HREF="b-1.0.tar.gz#md5=' + "12" * 16 + '" DATA-YANKED="" data-gpg-sig="false">b</A>'
        '<a href="c-1.0.tar.gz#egg=c&amp;sha512=' + "cd" * 64 + '" data-yanked="bad &quot;x&quot;"'
        ' data-requires-python="">c</a>'
    )
    a, b, c = parse_html(html_page(anchors)).files
    assert a.url == "https://index.example/p/a-1.0.tar.gz"
    assert a.hashes == {"sha256": "ab" * 32}
    assert a.requires_python == ">=3.8,<4"
    assert (a.yanked, a.yanked_reason) == (True, None)  # valueless attribute
    assert a.core_metadata is True
    assert a.gpg_sig is True
    assert b.url == "https://index.example/simple/frobnicate/b-1.0.tar.gz"
    assert b.hashes == {"md5": "12" * 16}
    assert (b.yanked, b.yanked_reason) == (True, None)  # empty string: no reason
    assert b.gpg_sig is False
    assert c.hashes == {"sha512": "cd" * 64}  # egg= is no hash
    assert (c.yanked, c.yanked_reason) == (True, 'bad "x"')
    assert c.requires_python is None
    assert c.core_metadata is None and c.gpg_sig is None


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('data-core-metadata="sha256=' + "ab" * 32 + '"', {"sha256": "ab" * 32}),
        ('data-dist-info-metadata="sha256=' + "ab" * 32 + '"', {"sha256": "ab" * 32}),
        ('data-dist-info-metadata="true"', True),
        # PEP 714: data-core-metadata is read whenever present.
        (
            'data-dist-info-metadata="true" data-core-metadata="sha256=' + "ab" * 32 + '"',
            {"sha256": "ab" * 32},
        ),
    ],
)
def test_html_core_metadata(attributes: str, expected: object) -> None:
    page = parse_html(html_page(f'<a href="f-1.0.tar.gz" {attributes}>f</a>'))
    assert only_file(page).core_metadata == expected


def test_html_base_href_and_skipped_anchors() -> None:
    anchors = (
        '<a name="top"></a><a href="">empty</a><a href="../">parent</a>'
        '<a href="f-1.0.tar.gz">f-1.0.tar.gz</a>'
    )
    body = html_page(anchors).replace(b"<head>", b'<head><base href="/mirror/files/">')
    dist = only_file(parse_html(body))
    assert dist.url == "https://index.example/mirror/files/f-1.0.tar.gz"
    assert dist.filename == "f-1.0.tar.gz"


def test_html_filename_is_unquoted_from_url() -> None:
    page = parse_html(html_page('<a href="f%2B1-1.0.tar.gz?x=1&amp;y=2">anything</a>'))
    dist = only_file(page)
    assert dist.filename == "f+1-1.0.tar.gz"
    assert dist.url == "https://index.example/simple/frobnicate/f%2B1-1.0.tar.gz?x=1&y=2"


def test_html_serial_comment_anywhere() -> None:
    body = html_page("", extra="\n<!--SERIAL 42-->\n")
    assert parse_html(body).serials == {"html-comment": 42}
    body = b"<!-- SERIAL 42 --><html><body></body></html><!--SERIAL 42--><!-- other -->"
    assert parse_html(body).serials == {"html-comment": 42}


def test_html_zero_files_is_valid() -> None:
    page = parse_html(html_page("<p>no files yet</p>"))
    assert page.files == ()
    assert page.name == "frobnicate"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            html_page('<a href="f.tar.gz" data-core-metadata="yes">f</a>'),
            "bad data-core-metadata value 'yes'",
        ),
        (
            html_page('<a href="f.tar.gz" data-core-metadata>f</a>'),
            "bad data-core-metadata value None",
        ),
        (
            html_page('<a href="f.tar.gz" data-dist-info-metadata="sha256=nothex">f</a>'),
            "bad sha256 digest 'nothex'",
        ),
        (html_page('<a href="f.tar.gz" data-gpg-sig="yes">f</a>'), "bad data-gpg-sig value"),
        (html_page('<a href="f.tar.gz#sha256=zz">f</a>'), "bad sha256 digest 'zz'"),
        (html_page('<a href="f.tar.gz#sha256=">f</a>'), "bad sha256 digest ''"),
        (html_page('<a href="..%2Fevil.whl">f</a>'), "bad filename"),
        (html_page("", "<!--SERIAL 1--><!--SERIAL 2-->"), "several different SERIAL comments"),
        (
            html_page("").replace(
                b"<head>", b'<head><meta name="pypi:repository-version" content="2.0">'
            ),
            "unsupported api-version '2.0'",
        ),
        (
            html_page("").replace(b"<head>", b'<head><meta name="pypi:repository-version">'),
            "bad api-version ''",
        ),
    ],
)
def test_html_malformed(body: bytes, match: str) -> None:
    with pytest.raises(MalformedPage, match=match):
        parse_html(body)


# --------------------------------------------------------------------------- rendering


def test_render_html_shape() -> None:
    page = parse_recorded("index-frobnicate.json")
    text = render_html(page, rewrite_url=proxied, serial=SERIAL).decode()
    assert '<meta name="pypi:repository-version" content="1.1">' in text
    assert text.rstrip().endswith(f"</html>\n<!--SERIAL {SERIAL}-->")
    metadata = "sha256=6cf8af0b00050c5e19f5f524f0bf54eaa5cb1c852d0b78726f8feb0950785d72"
    assert (
        '<a href="http://127.0.0.1:8080/files/frobnicate-1.0.0-py3-none-any.whl'
        '#sha256=62e35a28c53145f66be00857b0bb044cd86e7281d2838fdf65146bdb60592a71"'
        ' data-requires-python="&gt;=3.8"'
        f' data-core-metadata="{metadata}" data-dist-info-metadata="{metadata}">'
        "frobnicate-1.0.0-py3-none-any.whl</a>"
    ) in text
    assert 'data-yanked="Broken import on Windows, use 1.1.1 (see issue #214 &amp; #215)"' in text
    assert "upload-time" not in text and "18233" not in text
    no_serial = render_html(page, rewrite_url=proxied, serial=None).decode()
    assert "SERIAL" not in no_serial


def test_render_html_escapes_everything() -> None:
    nasty = DistFile(
        filename="x-1.0.tar.gz",
        url="https://files.example/a\"b'<c>&d/x-1.0.tar.gz",
        hashes={"md5": "12" * 16, "sha256": "ab" * 32, "sha512": "cd" * 64},
        requires_python='>=3.8,<4" onclick="x',
        yanked=True,
        yanked_reason="<script>alert('&')</script>\r\nline two",
        core_metadata={"sha512": "ef" * 64, "sha256": "01" * 32},
        gpg_sig=True,
    )
    page = ProjectPage(name="<b>x</b>", files=(nasty,))
    text = render_html(page, rewrite_url=identity, serial=1).decode()
    assert "<script>" not in text and "<b>" not in text and '" onclick' not in text
    assert "\r" not in text
    parsed = only_file(parse_html(text.encode()))
    assert parsed.url == nasty.url
    assert parsed.hashes == {"sha256": "ab" * 32}  # one hash in the fragment, sha256 first
    assert parsed.requires_python == nasty.requires_python
    assert parsed.yanked_reason == nasty.yanked_reason
    assert parsed.core_metadata == {"sha256": "01" * 32}
    assert parsed.gpg_sig is True


def test_render_html_prefers_sha256_then_strongest() -> None:
    dist = DistFile(
        "x-1.tar.gz", "https://f.example/x-1.tar.gz", {"md5": "12" * 16, "sha512": "cd" * 64}
    )
    text = render_html(ProjectPage("x", (dist,)), rewrite_url=identity, serial=None).decode()
    assert "#sha512=" + "cd" * 64 + '"' in text
    bare = DistFile("x-1.tar.gz", "https://f.example/x-1.tar.gz")
    text = render_html(ProjectPage("x", (bare,)), rewrite_url=identity, serial=None).decode()
    assert 'href="https://f.example/x-1.tar.gz"' in text


def test_render_html_refuses_rewritten_url_with_fragment() -> None:
    page = ProjectPage("x", (DistFile("x-1.tar.gz", "https://f.example/x-1.tar.gz"),))
    with pytest.raises(ValueError, match="fragment"):
        render_html(page, rewrite_url=lambda u: u + "#frag", serial=None)
