"""The stale-index simulator, exercised over real HTTP on 127.0.0.1 (never the network).

The guard's tests trust these servers to behave like the real index and CDN, so the facts
about them that the guard relies on are pinned down here: where serials appear, what a
role change does, how each edge and variant goes stale and comes back, and what the
changelog answers (or fails with).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import xmlrpc.client
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

import pytest
import requests

from safe_pip.testing import CDN, PROFILES, Origin, build_wheel
from safe_pip.testing._wheels import metadata_of

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
)
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
HTML_ACCEPT = "application/vnd.pypi.simple.v1+html"
SERIAL_COMMENT = re.compile(r"</html>\s*<!--SERIAL (\d+)-->\s*$")
DELAY = 0.3  # the one purge / file delay used throughout: short, but well above jitter


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(
    http: requests.Session, url: str, accept: str = JSON_ACCEPT, **headers: str
) -> requests.Response:
    response = http.get(url, headers={"Accept": accept, **headers}, timeout=10)
    response.close()
    return response


def page_serial(response: requests.Response) -> int:
    """The serial of a JSON page, checked to agree with its header."""
    serial = response.json()["meta"]["_last-serial"]
    assert int(response.headers["X-PyPI-Last-Serial"]) == serial
    return int(serial)


def versions(response: requests.Response) -> list[str]:
    return list(response.json()["versions"])


def xmlrpc_call(url: str, method: str, *params: Any) -> Any:
    with xmlrpc.client.ServerProxy(url, allow_none=True) as proxy:
        return getattr(proxy, method)(*params)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


# --------------------------------------------------------------------------- wheels


def test_build_wheel_is_deterministic_with_a_correct_record() -> None:
    filename, data = build_wheel(
        "Foo.Bar", "1.2", requires=["dep>=1"], requires_python=">=3.8", payload_size=1000
    )
    assert filename == "foo_bar-1.2-py3-none-any.whl"
    assert build_wheel(
        "Foo.Bar", "1.2", requires=["dep>=1"], requires_python=">=3.8", payload_size=1000
    ) == (filename, data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert "foo_bar/__init__.py" in names
        assert zf.read("foo_bar/__init__.py") == b'__version__ = "1.2"\n'
        assert len(zf.read("foo_bar/_payload.bin")) == 1000
        record = list(csv.reader(io.StringIO(zf.read("foo_bar-1.2.dist-info/RECORD").decode())))
        assert sorted(row[0] for row in record) == sorted(names)
        for path, digest, size in record:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            content = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(content)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    metadata = metadata_of(data).decode()
    assert "Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.2\n" in metadata
    assert "Requires-Dist: dep>=1\n" in metadata
    assert "Requires-Python: >=3.8\n" in metadata


def test_a_built_wheel_installs_with_real_pip_and_imports(tmp_path: Path) -> None:
    filename, data = build_wheel("Demo-Pkg", "3.1")
    wheel = tmp_path / filename
    wheel.write_bytes(data)
    target = tmp_path / "target"
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--target", str(target)]
    subprocess.run([*command, str(wheel)], env=clean_env(), check=True, capture_output=True)
    imported = subprocess.run(
        [sys.executable, "-c", "import demo_pkg; print(demo_pkg.__version__)"],
        env={**clean_env(), "PYTHONPATH": str(target)},
        check=True,
        capture_output=True,
        text=True,
    )
    assert imported.stdout.strip() == "3.1"


# --------------------------------------------------------------------------- origin pages


def test_json_page_has_serial_files_and_absolute_file_urls(
    origin: Origin, http: requests.Session
) -> None:
    origin.publish("Foo_Bar", "1.0", requires_python=">=3.8", upload_time=1_700_000_000)
    serial = origin.publish("foo-bar", "1.1")
    response = get(http, origin.simple_url + "foo-bar/", PIP_ACCEPT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON_ACCEPT
    assert response.headers["Cache-Control"] == "max-age=600, public"
    assert page_serial(response) == serial == origin.project_serial("FOO.bar") == 5
    body = response.json()
    assert body["meta"]["api-version"] == "1.4"  # the default profile is PyPI's
    assert body["name"] == "Foo_Bar"  # the display name of the first upload
    assert body["versions"] == ["1.0", "1.1"]
    first = body["files"][0]
    assert first["filename"] == "foo_bar-1.0-py3-none-any.whl"
    assert first["url"].startswith(origin.files_url + "/packages/")
    assert not first["url"].startswith(origin.url)
    assert first["requires-python"] == ">=3.8"
    assert first["yanked"] is False
    assert first["upload-time"] == "2023-11-14T22:13:20Z"
    assert "requires-python" not in body["files"][1]
    wheel = http.get(first["url"], timeout=10)
    assert first["hashes"] == {"sha256": hashlib.sha256(wheel.content).hexdigest()}
    assert first["size"] == len(wheel.content) == int(wheel.headers["Content-Length"])
    metadata = http.get(first["url"] + ".metadata", timeout=10)
    assert metadata.status_code == 200
    assert metadata.content == metadata_of(wheel.content)
    digest = hashlib.sha256(metadata.content).hexdigest()
    assert first["core-metadata"] == first["data-dist-info-metadata"] == {"sha256": digest}


def test_html_page_agrees_with_the_json_page(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0", requires_python=">=3.8,<4")
    origin.publish("foo", "2.0", with_metadata=False)
    json_page = get(http, origin.simple_url + "foo/", JSON_ACCEPT).json()
    for accept, content_type in [
        (HTML_ACCEPT, HTML_ACCEPT),
        ("text/html", "text/html; charset=utf-8"),
        ("*/*", "text/html; charset=utf-8"),
    ]:
        response = get(http, origin.simple_url + "foo/", accept)
        assert response.headers["Content-Type"] == content_type
        match = SERIAL_COMMENT.search(response.text)
        assert match is not None
        assert int(match.group(1)) == int(response.headers["X-PyPI-Last-Serial"])
        assert int(match.group(1)) == json_page["meta"]["_last-serial"]
        anchors = re.findall(r"<a ([^>]*)>([^<]*)</a>", response.text)
        assert [name for _, name in anchors] == [f["filename"] for f in json_page["files"]]
        first, second = (attrs for attrs, _ in anchors)
        sha = json_page["files"][0]["hashes"]["sha256"]
        assert f'href="{json_page["files"][0]["url"]}#sha256={sha}"' in first
        assert 'data-requires-python="&gt;=3.8,&lt;4"' in first
        metadata_sha = json_page["files"][0]["core-metadata"]["sha256"]
        assert f'data-dist-info-metadata="sha256={metadata_sha}"' in first
        assert f'data-core-metadata="sha256={metadata_sha}"' in first
        assert "data-yanked" not in first
        assert "metadata" not in second
    assert json_page["files"][1]["core-metadata"] is False


def test_content_negotiation_redirects_and_404(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    url = origin.simple_url + "foo/"

    def content_type(accept: str) -> str:
        return get(http, url, accept).headers["Content-Type"].split(";")[0]

    assert content_type(PIP_ACCEPT) == JSON_ACCEPT
    assert content_type("") == "text/html"
    assert content_type("text/html, application/vnd.pypi.simple.v1+json") == "text/html"
    assert content_type("application/vnd.pypi.simple.latest+json") == JSON_ACCEPT
    assert content_type("application/vnd.pypi.simple.v1+json;q=0, text/html") == "text/html"
    assert content_type("application/*;q=0.5, text/html;q=0.4") == HTML_ACCEPT
    for path in ["foo", "Foo/", "FOO"]:
        response = http.get(origin.simple_url + path, allow_redirects=False, timeout=10)
        assert response.status_code == 301
        assert response.headers["Location"] == "/simple/foo/"
    assert get(http, origin.simple_url + "Foo").status_code == 200  # follows the redirect
    assert get(http, origin.simple_url + "nope/").status_code == 404
    assert get(http, origin.url + "/pypi/nope/json").status_code == 404
    assert get(http, origin.files_url + "/packages/00/00/nope.whl").status_code == 404


def test_gzip_when_accepted(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    headers = {"Accept": JSON_ACCEPT, "Accept-Encoding": "gzip"}
    with http.get(origin.simple_url + "foo/", headers=headers, stream=True, timeout=10) as r:
        raw = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept, Accept-Encoding"
    assert json.loads(gzip.decompress(raw))["meta"]["_last-serial"] == 3
    plain = get(http, origin.simple_url + "foo/", JSON_ACCEPT, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.json()["meta"]["_last-serial"] == 3


def test_serial_sources_and_fake_serial(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    origin.serial_sources = {"json-meta"}
    response = get(http, origin.simple_url + "foo/", JSON_ACCEPT)
    assert "X-PyPI-Last-Serial" not in response.headers
    assert response.json()["meta"]["_last-serial"] == 3
    assert "SERIAL" not in get(http, origin.simple_url + "foo/", HTML_ACCEPT).text
    origin.serial_sources = set()  # a static mirror
    assert "_last-serial" not in get(http, origin.simple_url + "foo/").json()["meta"]
    assert "last_serial" not in get(http, origin.url + "/pypi/foo/json").json()
    origin.serial_sources = {"header", "json-meta", "html-comment"}
    origin.fake_serial = 7
    assert page_serial(get(http, origin.simple_url + "foo/")) == 7
    assert "<!--SERIAL 7-->" in get(http, origin.simple_url + "foo/", "text/html").text


def test_json_serial_as_string(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    origin.json_serial_form = "str"  # as bandersnatch mirrors write it
    assert get(http, origin.simple_url + "foo/", JSON_ACCEPT).json()["meta"]["_last-serial"] == "3"
    root = get(http, origin.simple_url, JSON_ACCEPT).json()
    assert root["meta"]["_last-serial"] == "3"
    assert root["projects"] == [{"name": "foo", "_last-serial": "3"}]
    assert "<!--SERIAL 3-->" in get(http, origin.simple_url + "foo/", "text/html").text


def test_json_api_and_root_list(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    origin.publish("foo", "2.0")
    origin.publish("foo", "3.0b1")
    serial = origin.yank("foo", "2.0")
    origin.publish("bar", "0.1")
    response = get(http, origin.url + "/pypi/foo/json", "application/json")
    body = response.json()
    assert body["info"]["name"] == "foo"
    assert body["info"]["version"] == "1.0"  # 2.0 is yanked, 3.0b1 a pre-release
    assert sorted(body["releases"]) == ["1.0", "2.0", "3.0b1"]
    assert body["releases"]["2.0"][0]["yanked"] is True
    assert body["last_serial"] == serial == int(response.headers["X-PyPI-Last-Serial"])
    root = get(http, origin.simple_url, JSON_ACCEPT).json()
    assert root["meta"]["_last-serial"] == origin.last_serial
    assert [p["name"] for p in root["projects"]] == ["bar", "foo"]
    assert '<a href="/simple/foo/">foo</a>' in get(http, origin.simple_url, "text/html").text


def test_yank_unyank_and_removals(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    origin.publish("foo", "2.0")
    origin.yank("foo", "1.0", reason="broken <build>")
    origin.yank("foo", "2.0")
    files = get(http, origin.simple_url + "foo/").json()["files"]
    assert [f["yanked"] for f in files] == ["broken <build>", True]
    html_page = get(http, origin.simple_url + "foo/", "text/html").text
    assert 'data-yanked="broken &lt;build&gt;"' in html_page
    assert 'data-yanked=""' in html_page
    origin.unyank("foo", "2.0")
    assert get(http, origin.simple_url + "foo/").json()["files"][1]["yanked"] is False

    url = files[1]["url"]
    origin.remove_file("foo", "foo-2.0-py3-none-any.whl")
    body = get(http, origin.simple_url + "foo/").json()
    assert body["versions"] == ["1.0", "2.0"]  # the release stays, without files
    assert [f["filename"] for f in body["files"]] == ["foo-1.0-py3-none-any.whl"]
    assert get(http, url).status_code == 404
    with pytest.raises(ValueError, match="already used"):
        origin.publish("foo", "2.0")  # the index never accepts a file name twice
    origin.remove_release("foo", "1.0")
    assert get(http, origin.simple_url + "foo/").json()["versions"] == ["2.0"]
    assert get(http, files[0]["url"]).status_code == 404
    serial = origin.remove_project("foo")
    assert get(http, origin.simple_url + "foo/").status_code == 404
    assert origin.project_serial("foo") == serial == origin.last_serial


def test_added_wheels_are_listed_installable_and_share_the_metadata(
    origin: Origin, http: requests.Session, tmp_path: Path
) -> None:
    origin.publish("Foo", "1.0", requires=["bar>=1"], requires_python=">=3.8")
    tags = ["cp311-cp311-manylinux_2_17_x86_64", "cp312-cp312-win_amd64"]
    serial = origin.add_wheels("foo", "1.0", tags)
    assert [e.action for e in origin.journal[-2:]] == [
        "add cp311 file foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "add cp312 file foo-1.0-cp312-cp312-win_amd64.whl",
    ]
    assert serial == origin.project_serial("foo") == origin.last_serial
    files = get(http, origin.simple_url + "foo/").json()["files"]
    assert len(files) == 3
    assert len({f["hashes"]["sha256"] for f in files}) == 3  # each wheel its own bytes
    assert len({f["core-metadata"]["sha256"] for f in files}) == 1
    assert {f["requires-python"] for f in files} == {">=3.8"}
    added = next(f for f in files if "manylinux" in f["filename"])
    wheel = http.get(added["url"], timeout=10).content
    assert hashlib.sha256(wheel).hexdigest() == added["hashes"]["sha256"]
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        assert zf.testzip() is None
        assert zf.comment == added["filename"].encode()
    assert http.get(added["url"] + ".metadata", timeout=10).content == metadata_of(wheel)
    with pytest.raises(ValueError, match="already used"):
        origin.add_wheels("foo", "1.0", tags[:1])
    with pytest.raises(KeyError):
        origin.add_wheels("foo", "2.0", tags)


def test_journal_action_strings_and_role_changes(origin: Origin) -> None:
    origin.publish("Foo", "1.0")
    origin.yank("Foo", "1.0")
    origin.unyank("Foo", "1.0")
    content = origin.remove_file("foo", "foo-1.0-py3-none-any.whl")
    role = origin.role_change("foo", user="alice")
    assert [(e.name, e.version, e.action, e.serial) for e in origin.journal] == [
        ("Foo", None, "create", 1),
        ("Foo", "1.0", "new release", 2),
        ("Foo", "1.0", "add py3 file foo-1.0-py3-none-any.whl", 3),
        ("Foo", "1.0", "yank release", 4),
        ("Foo", "1.0", "unyank release", 5),
        ("Foo", "1.0", "remove file foo-1.0-py3-none-any.whl", 6),
        ("Foo", None, "add Owner alice", 7),
    ]
    assert origin.project_serial("foo") == role == origin.last_serial == 7
    assert origin.content_serial("foo") == content == 6
    assert all(isinstance(e.timestamp, int) for e in origin.journal)


def test_purge_listeners_hear_content_changes_but_not_role_changes(origin: Origin) -> None:
    heard: list[str] = []
    origin.add_purge_listener(heard.append)
    origin.publish("Foo.Bar", "1.0")
    origin.role_change("foo.bar")
    origin.yank("foo-bar", "1.0")
    assert heard == ["foo-bar", "foo-bar"]


# --------------------------------------------------------------------------- changelog


def test_changelog_last_since_and_paging(origin: Origin) -> None:
    for version in ["1.0", "1.1", "1.2"]:
        origin.publish("Foo", version)
    origin.role_change("Foo")
    url = origin.changelog_url
    assert xmlrpc_call(url, "changelog_last_serial") == 8
    rows = xmlrpc_call(url, "changelog_since_serial", 5)
    assert rows == [list(e) for e in origin.journal[5:]]
    assert rows[0][:2] == ["Foo", "1.2"] and rows[-1][1] is None
    origin.changelog_page_size = 3
    serial, pages = 0, []
    while True:
        page = xmlrpc_call(url, "changelog_since_serial", serial)
        if not page:
            break
        pages.append(page)
        serial = page[-1][4]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [row[4] for p in pages for row in p] == list(range(1, 9))
    assert xmlrpc_call(url, "list_packages_with_serial") == {"Foo": 8}
    assert origin.calls["changelog_since_serial"] == 5
    assert origin.calls["changelog_last_serial"] == 1
    with pytest.raises(xmlrpc.client.Fault):
        xmlrpc_call(url, "no_such_method")
    assert origin.calls["no_such_method"] == 1


@pytest.mark.parametrize("fault", ["405", "500", "garbage"])
def test_changelog_faults(origin: Origin, fault: Any) -> None:
    origin.changelog_fault = fault
    if fault == "garbage":
        with pytest.raises(ExpatError):
            xmlrpc_call(origin.changelog_url, "changelog_last_serial")
    else:
        with pytest.raises(xmlrpc.client.ProtocolError) as caught:
            xmlrpc_call(origin.changelog_url, "changelog_last_serial")
        assert caught.value.errcode == int(fault)
    origin.changelog_fault = None
    assert xmlrpc_call(origin.changelog_url, "changelog_last_serial") == 0
    assert origin.calls["changelog_last_serial"] == 2


def test_changelog_timeout_fault_outlasts_the_client_and_stops_promptly() -> None:
    origin = Origin(changelog_fault="timeout").start()
    try:
        body = xmlrpc.client.dumps((), "changelog_last_serial").encode()
        with pytest.raises(requests.exceptions.Timeout):
            requests.post(origin.changelog_url, data=body, timeout=0.2)
    finally:
        started = time.monotonic()
        origin.stop()
    assert time.monotonic() - started < 1.0
    assert origin.calls["changelog_last_serial"] == 1


# --------------------------------------------------------------------------- file host


def test_file_delay_answers_404_then_the_file(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0", file_delay=DELAY)
    published = time.monotonic()
    entry = get(http, origin.simple_url + "foo/").json()["files"][0]
    assert get(http, entry["url"]).status_code == 404
    assert get(http, entry["url"] + ".metadata").status_code == 404
    time.sleep(max(0.0, published + DELAY - time.monotonic()) + 0.02)
    wheel = get(http, entry["url"])
    assert wheel.status_code == 200
    assert hashlib.sha256(wheel.content).hexdigest() == entry["hashes"]["sha256"]
    assert get(http, entry["url"] + ".metadata").status_code == 200
    # the file name must match the page's URL exactly, prefix included
    wrong = entry["url"].replace("/packages/", "/packages/0")
    assert get(http, wrong).status_code == 404


# --------------------------------------------------------------------------- CDN


def test_cdn_caches_and_reports_hits(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin) as cdn:
        first = get(http, cdn.simple_url + "foo/", PIP_ACCEPT)
        second = get(
            http,
            cdn.simple_url + "foo/?cachebust=1",
            PIP_ACCEPT,
            **{"Cache-Control": "no-cache", "Pragma": "no-cache"},
        )
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
        assert second.headers["X-Served-By"] == "edge-0"
        assert second.content == first.content
        assert int(second.headers["Age"]) >= 0
        assert page_serial(second) == 3
        assert (cdn.hits, cdn.misses) == (1, 1)
        root = get(http, cdn.simple_url)  # passed through, never cached
        assert root.headers["X-Cache"] == "PASS"
        assert (cdn.hits, cdn.misses) == (1, 1)
        assert xmlrpc_call(cdn.changelog_url, "changelog_last_serial") == 3
        assert xmlrpc_call(cdn.changelog_url, "changelog_last_serial") == 3
        assert origin.calls["changelog_last_serial"] == 2  # POSTs are never cached


def test_role_change_raises_serial_but_the_cdn_copy_stays(
    origin: Origin, http: requests.Session
) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin) as cdn:
        assert page_serial(get(http, cdn.simple_url + "foo/")) == 3
        origin.role_change("foo")
        cached = get(http, cdn.simple_url + "foo/")
        assert cached.headers["X-Cache"] == "HIT"
        assert page_serial(cached) == 3
        assert origin.project_serial("foo") == 4
        assert origin.content_serial("foo") == 3
        fresh = get(http, origin.simple_url + "foo/")
        assert page_serial(fresh) == 4  # the origin itself renders the new serial
        assert fresh.json()["files"] == cached.json()["files"]


def test_a_stale_edge_keeps_the_old_page_while_another_has_purged(
    origin: Origin, http: requests.Session
) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin, edges=2, purge_delays=[0.0, None]) as cdn:
        for edge in (0, 1):
            cdn.pin(edge)
            assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0"]
        serial = origin.publish("foo", "2.0")
        cdn.pin(0)
        fresh = get(http, cdn.simple_url + "foo/")
        assert fresh.headers["X-Cache"] == "MISS"
        assert (versions(fresh), page_serial(fresh)) == (["1.0", "2.0"], serial)
        cdn.pin(1)  # a lost purge: stale until purged by hand (or forever)
        stale = get(http, cdn.simple_url + "foo/")
        assert (stale.headers["X-Cache"], stale.headers["X-Served-By"]) == ("HIT", "edge-1")
        assert (versions(stale), page_serial(stale)) == (["1.0"], 3)
        cdn.purge_now("FOO")
        assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0", "2.0"]


def test_purge_delay_elapses_and_later_fills_are_fresh(
    origin: Origin, http: requests.Session
) -> None:
    origin.publish("foo", "1.0")
    origin.publish("bar", "1.0")
    with CDN(origin, purge_delays=[DELAY]) as cdn:
        get(http, cdn.simple_url + "foo/")
        origin.publish("foo", "2.0")
        origin.publish("bar", "2.0")
        changed = time.monotonic()
        assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0"]  # purge not yet here
        # bar was not cached before its change: its first copy is fresh and must survive
        # the purge that arrives later
        assert versions(get(http, cdn.simple_url + "bar/")) == ["1.0", "2.0"]
        time.sleep(max(0.0, changed + DELAY - time.monotonic()) + 0.02)
        assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0", "2.0"]
        bar = get(http, cdn.simple_url + "bar/")
        assert bar.headers["X-Cache"] == "HIT"
        assert versions(bar) == ["1.0", "2.0"]


def test_one_variant_stale_while_the_others_are_fresh(
    origin: Origin, http: requests.Session
) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin, per_variant_purge_delays={("json", "gzip"): None}) as cdn:
        gz, plain = {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}
        get(http, cdn.simple_url + "foo/", JSON_ACCEPT, **gz)
        get(http, cdn.simple_url + "foo/", JSON_ACCEPT, **plain)
        get(http, cdn.simple_url + "foo/", HTML_ACCEPT, **gz)
        assert len(cdn.cached(0)) == 3
        serial = origin.publish("foo", "2.0")
        assert page_serial(get(http, cdn.simple_url + "foo/", JSON_ACCEPT, **gz)) == 3
        assert page_serial(get(http, cdn.simple_url + "foo/", JSON_ACCEPT, **plain)) == serial
        html_page = get(http, cdn.simple_url + "foo/", HTML_ACCEPT, **gz).text
        assert f"<!--SERIAL {serial}-->" in html_page


def test_json_api_is_cached_and_purged(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin, per_variant_purge_delays={"api": None}) as cdn:
        assert get(http, cdn.url + "/pypi/foo/json").json()["info"]["version"] == "1.0"
        get(http, cdn.simple_url + "foo/")
        origin.publish("foo", "2.0")
        api = get(http, cdn.url + "/pypi/foo/json")
        assert (api.headers["X-Cache"], api.json()["info"]["version"]) == ("HIT", "1.0")
        assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0", "2.0"]
        cdn.set_purge_delays([0.0])  # the overrides go: later changes purge everything
        origin.yank("foo", "2.0")
        api = get(http, cdn.url + "/pypi/foo/json")
        assert (api.headers["X-Cache"], api.json()["info"]["version"]) == ("MISS", "1.0")


def test_404_copies_are_cached_and_purged(origin: Origin, http: requests.Session) -> None:
    with CDN(origin) as cdn:
        assert get(http, cdn.simple_url + "new/").status_code == 404
        missing = get(http, cdn.simple_url + "new/")
        assert (missing.status_code, missing.headers["X-Cache"]) == (404, "HIT")
        origin.publish("New", "1.0")
        assert get(http, cdn.simple_url + "new/").status_code == 200
    with CDN(origin, negative_ttl=0.0) as cdn:
        get(http, cdn.simple_url + "other/")
        assert get(http, cdn.simple_url + "other/").headers["X-Cache"] == "MISS"
        get(http, cdn.simple_url + "new/")
        assert get(http, cdn.simple_url + "new/").headers["X-Cache"] == "HIT"


def test_ttl_expires_copies(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin, purge_delays=[None], ttl=DELAY) as cdn:
        get(http, cdn.simple_url + "foo/")
        filled = time.monotonic()
        origin.publish("foo", "2.0")
        assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0"]
        time.sleep(max(0.0, filled + DELAY - time.monotonic()) + 0.02)
        assert versions(get(http, cdn.simple_url + "foo/")) == ["1.0", "2.0"]


def test_routing(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")

    def served_by(cdn: CDN, count: int) -> list[str]:
        return [get(http, cdn.simple_url + "foo/").headers["X-Served-By"] for _ in range(count)]

    with CDN(origin, edges=3) as cdn:
        assert served_by(cdn, 4) == ["edge-0", "edge-1", "edge-2", "edge-0"]
        cdn.pin(2)
        assert served_by(cdn, 2) == ["edge-2", "edge-2"]
        cdn.pin(None)
        assert served_by(cdn, 1) == ["edge-1"]
        with pytest.raises(ValueError):
            cdn.pin(3)
    with CDN(origin, edges=3, routing=1) as cdn:
        assert set(served_by(cdn, 3)) == {"edge-1"}
    picks = []
    for _ in range(2):
        with CDN(origin, edges=3, routing="random", seed=42) as cdn:
            picks.append(served_by(cdn, 8))
    assert picks[0] == picks[1]
    assert len(set(picks[0])) > 1


def test_real_pip_installs_through_the_cdn(origin: Origin, tmp_path: Path) -> None:
    origin.publish("App", "1.0", requires=["dep>=1"])
    origin.publish("dep", "1.0")
    origin.publish("dep", "2.0")
    origin.yank("dep", "2.0", reason="broken")
    with CDN(origin, edges=2) as cdn:
        target = tmp_path / "target"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--no-cache-dir",
                "--index-url",
                cdn.simple_url,
                "--target",
                str(target),
                "app",
            ],
            env=clean_env(),
            check=True,
            capture_output=True,
        )
        assert cdn.misses >= 2
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "app-1.0.dist-info",
        "dep-1.0.dist-info",
    ]


# --------------------------------------------------------------------------- index profiles


def _profile_page(origin: Origin, http: requests.Session, accept: str) -> requests.Response:
    return get(http, origin.simple_url + "foo/", accept)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_serves_its_serial_forms_and_fields(
    name: str, http: requests.Session
) -> None:
    profile = PROFILES[name]
    with Origin(profile=name) as origin:
        origin.publish("foo", "1.0")
        serial = origin.publish("foo", "2.0")
        js = _profile_page(origin, http, JSON_ACCEPT)
        page = _profile_page(origin, http, HTML_ACCEPT)
        header = js.headers.get("X-PyPI-Last-Serial")
        assert (header == str(serial)) == ("header" in profile.serial_sources)
        comment = SERIAL_COMMENT.search(page.text)
        assert (comment is not None) == ("html-comment" in profile.serial_sources)
        if not profile.json_pages:
            # A static server answers HTML whatever is asked for.
            assert js.headers["Content-Type"].startswith("text/html")
            assert "<!--SERIAL" not in js.text
            return
        body = js.json()
        meta = body["meta"]
        assert meta["api-version"] == profile.api_version
        if "json-meta" in profile.serial_sources:
            written = str(serial) if profile.json_serial_form == "str" else serial
            assert meta["_last-serial"] == written  # the type too: "37" is not 37
        else:
            assert "_last-serial" not in meta
        files = body["files"]
        timed = [f for f in files if "upload-time" in f]
        expected = {"all": len(files), "some": len(files) // 2, "none": 0}[profile.upload_times]
        assert len(timed) == expected
        assert ("versions" in body) == profile.pep700_fields
        assert all(("size" in f) == profile.pep700_fields for f in files)
        assert all(("provenance" in f) == profile.provenance for f in files)
        assert ("project-status" in body) == profile.project_status
        assert ('name="pypi:project-status"' in page.text) == profile.project_status
        metadata = http.get(files[0]["url"] + ".metadata", timeout=10)
        assert (metadata.status_code == 200) == profile.metadata_files
        assert all(bool(f["core-metadata"]) == profile.metadata_files for f in files)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_only_pypi_answers_the_changelog_and_every_upstream_journal_does(name: str) -> None:
    with Origin(profile=name) as origin:
        serial = origin.publish("foo", "1.0")
        assert xmlrpc_call(origin.upstream_changelog_url, "changelog_last_serial") == serial
        if PROFILES[name].changelog:
            assert xmlrpc_call(origin.changelog_url, "changelog_last_serial") == serial
        else:
            with pytest.raises(xmlrpc.client.ProtocolError) as refused:
                xmlrpc_call(origin.changelog_url, "changelog_last_serial")
            assert refused.value.errcode == 405  # as a mirror's web server answers a POST


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ValueError, match="no index profile 'artifactory' .*known: pypi"):
        Origin(profile="artifactory")


def test_soft_purge_serves_the_old_copy_once_more(origin: Origin, http: requests.Session) -> None:
    origin.publish("foo", "1.0")
    with CDN(origin, soft_purge=True) as soft:
        get(http, soft.simple_url + "foo/")
        origin.publish("foo", "2.0")  # purged at once, softly
        stale = get(http, soft.simple_url + "foo/")
        assert stale.headers["X-Cache"] == "HIT"
        assert versions(stale) == ["1.0"]  # stale-while-revalidate: answered once more
        assert versions(get(http, soft.simple_url + "foo/")) == ["1.0", "2.0"]
