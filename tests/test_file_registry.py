"""The guard's file registry: a served page's files are looked up in the page only when asked
for, and only files the guard listed are fetched, with the hashes of the page that listed them.

The downloads are answered by a recording prefetcher hook, so no server is needed."""

from __future__ import annotations

import io
from typing import IO

import pytest

from safe_pip.guard.files import FileEntry, FileRegistry
from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.refusals import NotFound, Referee
from safe_pip.guard.timing import Timing
from safe_pip.index.model import DistFile, ProjectPage
from safe_pip.net.http import make_session
from safe_pip.net.settings import TransportSettings

BASE = "http://127.0.0.1:1/token"
HOST = "http://files.example/packages"


class Ready:
    """Answers every file request with fixed bytes, recording what the registry expected."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    def file_ready(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str]
    ) -> tuple[IO[bytes], int] | None:
        self.asked.append((name, url, expected))
        return io.BytesIO(b"x"), 1

    def file_seen(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str], handle: IO[bytes]
    ) -> None:
        raise AssertionError("file_ready answers every request")


def registry() -> tuple[FileRegistry, Ready]:
    session = make_session(TransportSettings())
    files = FileRegistry(session, None, Timing(max_wait=0.0), Referee(print), print, None)
    ready = Ready()
    files.prefetcher = ready
    return files, ready


def dist(name: str, digest: str, metadata: str | None = None) -> DistFile:
    return DistFile(
        name, f"{HOST}/{name}", {"sha256": digest}, core_metadata={"sha256": metadata}
        if metadata else None,
    )


def page(project: str, *files: DistFile) -> ProjectPage:
    return ProjectPage(project, files)


def links(files: FileRegistry, index: IndexEntry, listed: ProjectPage) -> list[str]:
    rewrite = files.rewriter(index, listed.name, listed, BASE)
    return [rewrite(d.url) for d in listed.files]


def key(link: str) -> tuple[tuple[int, int], str]:
    slot, position, name = link.removeprefix(f"{BASE}/f/").split("/")
    return (int(slot), int(position)), name


def test_listed_files_are_verified_against_their_own_page() -> None:
    files, ready = registry()
    index = IndexEntry(0, "http://index.example/simple/")
    alpha = page("alpha", dist("alpha-1.0.tar.gz", "aa" * 32), dist("alpha-2.0.tar.gz", "ab" * 32))
    beta = page("beta", dist("beta-1.0-py3-none-any.whl", "bb" * 32, metadata="bc" * 32))
    alpha_links, beta_links = links(files, index, alpha), links(files, index, beta)
    assert alpha_links == [
        f"{BASE}/f/0/0/alpha-1.0.tar.gz",
        f"{BASE}/f/0/1/alpha-2.0.tar.gz",
    ]
    assert beta_links == [f"{BASE}/f/1/0/beta-1.0-py3-none-any.whl"]

    files.fetch(*key(alpha_links[1]))
    files.fetch(*key(beta_links[0]))
    wheel = "beta-1.0-py3-none-any.whl"
    files.fetch((1, 0), f"{wheel}.metadata")
    assert ready.asked == [
        ("alpha-2.0.tar.gz", f"{HOST}/alpha-2.0.tar.gz", {"sha256": "ab" * 32}),
        (wheel, f"{HOST}/{wheel}", {"sha256": "bb" * 32}),
        (f"{wheel}.metadata", f"{HOST}/{wheel}.metadata", {"sha256": "bc" * 32}),
    ]


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ((5, 0), "alpha-1.0.tar.gz"),  # a page the guard never served
        ((0, 9), "alpha-1.0.tar.gz"),  # past the page's end: looked up by name, not listed
        ((0, 0), "beta-1.0-py3-none-any.whl"),  # listed, but on another page
        ((0, 0), "alpha-9.0.tar.gz"),
        ((0, 0), "alpha-1.0.tar.gz.asc"),
        (7, "alpha-1.0.tar.gz"),  # a number never registered alone
    ],
)
def test_files_the_guard_did_not_list_there_are_not_found(
    key: tuple[int, int] | int, name: str
) -> None:
    files, ready = registry()
    index = IndexEntry(0, "http://index.example/simple/")
    links(files, index, page("alpha", dist("alpha-2.0.tar.gz", "ab" * 32)))
    links(files, index, page("beta", dist("beta-1.0-py3-none-any.whl", "bb" * 32)))
    with pytest.raises(NotFound):
        files.fetch(key, name)
    assert ready.asked == []


def test_a_page_checked_again_keeps_its_slot_and_its_files_by_name() -> None:
    files, ready = registry()
    index = IndexEntry(0, "http://index.example/simple/")
    old = links(files, index, page("alpha", dist("alpha-1.0.tar.gz", "aa" * 32)))
    # Checked again: a new file sorts first, and the old one has new hashes.
    newer = page("alpha", dist("alpha-0.9.tar.gz", "a0" * 32), dist("alpha-1.0.tar.gz", "ee" * 32))
    assert links(files, index, newer)[1] == f"{BASE}/f/0/1/alpha-1.0.tar.gz"
    files.fetch(*key(old[0]))
    assert ready.asked == [("alpha-1.0.tar.gz", f"{HOST}/alpha-1.0.tar.gz", {"sha256": "ee" * 32})]


def test_unproxy_puts_back_the_upstream_urls() -> None:
    files, _ = registry()
    index = IndexEntry(0, "http://user:secret@index.example/simple/")
    listed = page("alpha", DistFile("alpha 1.0.tar.gz", "http://user:secret@files.example/a"))
    (link,) = links(files, index, listed)
    alone = files.register(f"{HOST}/beta.zip", "beta.zip", {}, {}, index)
    text = (
        f"a {link} b {link}.metadata c {BASE}/f/{alone}/beta.zip d {BASE}/f/0/5/x"
        f" e {BASE}/f/0/0/other f {BASE}/f/"
    )
    assert files.unproxy(text, BASE) == (
        f"a http://files.example/a b http://files.example/a.metadata c {HOST}/beta.zip"
        f" d {BASE}/f/0/5/x e {BASE}/f/0/0/other f {BASE}/f/"
    )
    assert link == f"{BASE}/f/0/0/alpha%201.0.tar.gz"


def test_a_url_not_on_the_page_is_registered_alone() -> None:
    files, ready = registry()
    index = IndexEntry(0, "http://index.example/simple/")
    listed = page("alpha", dist("alpha-1.0.tar.gz", "aa" * 32))
    rewrite = files.rewriter(index, "alpha", listed, BASE)
    assert rewrite(f"{HOST}/alpha-1.0.tar.gz") == f"{BASE}/f/0/0/alpha-1.0.tar.gz"
    assert rewrite(f"{HOST}/alpha-1.0.tar.gz") == f"{BASE}/f/0/0/alpha-1.0.tar.gz"
    assert rewrite(f"{HOST}/other.zip") == f"{BASE}/f/0/other.zip"
    files.fetch(0, "other.zip")
    assert ready.asked == [("other.zip", f"{HOST}/other.zip", {})]
