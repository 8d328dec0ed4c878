"""``safe-pip wait PROJECT==VERSION``: a release reaching the page's cached copies one by one,
a copy never purged, a file the host serves late, a version never uploaded, and the
references used without a changelog."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from safe_pip.cli import main
from safe_pip.testing import CDN, PROFILES, Origin, fill_cache

#: The order the CDN's purges reach the page's copies, and when (seconds after the upload).
ORDER = {("json", "gzip"): 0.0, ("html", "gzip"): 0.3, ("json", "identity"): 0.6,
         ("html", "identity"): 0.9}  # fmt: skip


pytestmark = pytest.mark.usefixtures("no_network")  # conftest


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0")
        yield server


@contextlib.contextmanager
def started_cdn(origin: Origin, delays: Mapping[tuple[str, str], float | None]) -> Iterator[CDN]:
    with CDN(origin, edges=1, per_variant_purge_delays=dict(delays)) as cdn:
        fill_cache(cdn, "alpha")  # earlier readers: every copy holds the page without 2.0
        # A first wait (for 1.0, visible at once) imports pip's parser and the guard, up to a
        # second on a busy machine: done before the upload, so the purges are timed from a look.
        assert main(["wait", "-i", cdn.simple_url, "alpha==1.0"]) == 0
        yield cdn


def wait(
    capsys: pytest.CaptureFixture[str], *args: str, guard: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any], str, float]:
    capsys.readouterr()
    started = time.monotonic()
    code = main([*guard, "wait", "--format", "json", *args])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    return code, json.loads(out), err, elapsed


def wait_on_cdn(
    capsys: pytest.CaptureFixture[str], cdn: CDN, *specs: str, max_wait: str
) -> tuple[int, dict[str, Any], str, float]:
    """Wait for the releases on the CDN, its changelog the reference."""
    guard = ("--changelog", cdn.changelog_url, "--max-wait", max_wait)
    return wait(capsys, "-i", cdn.simple_url, *specs, guard=guard)


def test_release_reaching_the_copies_one_by_one(
    origin: Origin, state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with started_cdn(origin, ORDER) as cdn:
        serial = origin.publish("alpha", "2.0")
        code, doc, err, _ = wait_on_cdn(capsys, cdn, "alpha==2.0", max_wait="20")
    assert code == 0, err
    (release,) = doc["releases"]
    assert release["state"] == "visible"
    assert (release["reference"], release["required_serial"]) == ("changelog", serial)
    copies = release["copies"]
    assert all(c["shows_release"] and c["serial"] == serial for c in copies)
    seen = sorted(copies, key=lambda c: c["first_shown_after_s"])
    assert [c["variant"] for c in seen] == [
        "json/gzip",
        "html/gzip",
        "json/identity",
        "html/identity",
    ]
    assert seen[-1]["first_shown_after_s"] >= 0.8  # the last purge, not a first look
    assert [f["filename"] for f in release["files"]] == ["alpha-2.0-py3-none-any.whl"]
    assert release["files"][0]["served_after_s"] is not None
    assert f"waiting for alpha 2.0 on {cdn.simple_url}: html/gzip serial " in err
    assert "safe-pip: alpha 2.0: visible everywhere after " in err
    assert f"(reference: the changelog: serial {serial}, 1 file)" in err


def test_a_copy_never_purged_is_named_at_the_deadline(
    origin: Origin, state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with started_cdn(origin, {**ORDER, ("html", "identity"): None}) as cdn:
        old = origin.project_serial("alpha")
        serial = origin.publish("alpha", "2.0")
        code, doc, err, elapsed = wait_on_cdn(capsys, cdn, "alpha==2.0", max_wait="1.5")
    assert code == 75, err
    assert 1.5 <= elapsed < 10
    (release,) = doc["releases"]
    assert release["state"] == "propagating"
    assert release["lagging"] == [f"html/identity serial {old}, {serial} required"]
    assert (
        f"safe-pip: alpha 2.0: still propagating after 1.5 s on {cdn.simple_url}: "
        f"html/identity serial {old}, {serial} required (reference: the changelog"
    ) in err


def test_a_file_the_host_serves_late(
    origin: Origin, state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with started_cdn(origin, {}) as cdn:
        origin.publish("alpha", "2.0", file_delay=1.0)
        code, doc, err, _ = wait_on_cdn(capsys, cdn, "alpha==2.0", max_wait="20")
    assert code == 0, err
    (release,) = doc["releases"]
    assert all(c["first_shown_after_s"] < 0.5 for c in release["copies"])  # pages at once
    assert release["files"][0]["served_after_s"] >= 0.8  # the file an upload later
    assert release["visible_after_s"] >= 0.8
    assert "alpha-2.0-py3-none-any.whl: the file host answered HTTP 404" in err


def test_a_version_never_uploaded_is_exit_1_at_once(
    origin: Origin, state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with started_cdn(origin, {}) as cdn:
        head = origin.publish("alpha", "2.0")
        code, doc, err, elapsed = wait_on_cdn(
            capsys, cdn, "alpha==2.0", "Alpha==2.1", max_wait="60"
        )
    assert code == 1, err
    assert elapsed < 5  # not a wait: --max-wait is 60 s
    assert [r["state"] for r in doc["releases"]] == ["not-waited", "no-such-release"]
    assert err.splitlines() == [
        f"safe-pip: alpha 2.1: no such release on {cdn.simple_url}: the changelog has no "
        f"upload of it in its newest 50,000 entries (serials 1 to {head}): never uploaded, or a "
        "typo; not waiting",
        "safe-pip: nothing was waited for: a release is not on the index (exit 1)",
    ]


def test_without_a_changelog_the_origin_is_the_reference(
    origin: Origin, state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with started_cdn(origin, {("html", "gzip"): 0.4}) as cdn:
        origin.publish("alpha", "2.0")
        code, doc, err, _ = wait(
            capsys, "-i", cdn.simple_url, "alpha==2.0",
            guard=("--origin", origin.simple_url, "--max-wait", "20"),
        )  # fmt: skip
        assert code == 0, err
        assert doc["releases"][0]["reference"] == "origin"
        assert "(reference: the origin: 1 file)" in err
        # The origin lists no such release: said at once.
        code, doc, err, _ = wait(
            capsys, "-i", cdn.simple_url, "alpha==9.0",
            guard=("--origin", origin.simple_url, "--max-wait", "60"),
        )  # fmt: skip
        assert code == 1, err
        assert f"the origin {origin.simple_url}alpha/ lists no file of it" in err


def test_with_neither_the_newest_serial_seen_is_the_reference(
    state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with Origin(profile="proxy-mirror") as mirror:  # its changelog answers 405
        mirror.publish("alpha", "1.0")
        with started_cdn(mirror, {("json", "identity"): 0.3}) as cdn:
            mirror.publish("alpha", "2.0")
            code, doc, err, _ = wait(
                capsys, "-i", cdn.simple_url, "alpha==2.0",
                guard=("--changelog", mirror.changelog_url, "--max-wait", "20"),
            )  # fmt: skip
            # A version no copy lists: without an authority nothing says it was never
            # uploaded, so it is waited for, then still propagating.
            code_missing, _, err_missing, _ = wait(
                capsys, "-i", cdn.simple_url, "alpha==3.0", guard=("--max-wait", "0.5")
            )
    assert code == 0, err
    (release,) = doc["releases"]
    assert release["reference"] == "newest serial seen"
    assert "HTTP 405" in release["fallback"]
    # The proxy mirror's HTML copies carry no serial: they are judged on their files.
    assert {c["variant"]: c["serial"] for c in release["copies"]}["html/gzip"] is None
    assert "(reference: the newest serial seen: serial " in err
    assert code_missing == 75, err_missing
    assert "json/gzip lists no file of 3.0" in err_missing
    assert "no changelog or origin is known for this index" in err_missing


@pytest.mark.parametrize(
    "spec", ["alpha", "alpha>=2.0", "alpha==", "==2.0", "alpha==not a version"]
)
def test_bad_release_is_a_usage_error(
    spec: str, state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["wait", "-i", "http://127.0.0.1:9/simple/", spec]) == 2
    assert f"safe-pip wait: {spec!r} is not PROJECT==VERSION" in capsys.readouterr().err


def test_an_index_that_refuses_access_is_exit_2_at_once(
    state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with Origin(basic_auth=("user", "secret")) as private:
        code = main(["--max-wait", "60", "wait", "-i", private.simple_url, "alpha==1.0"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert (
        f"safe-pip: the index {private.simple_url} needs credentials and none were available "
        "(HTTP 401 for alpha"
    ) in err
    assert err.rstrip().endswith("nothing was waited for")


# -- a mirror whose pages carry no serial: judged by content, as the guard judges them

#: A caching mirror that keeps pages an hour, never purged (Artifactory, Nexus, proxpi).
SLOW = PROFILES["plain"].caching(3600.0)
TAGS = ["cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-win_amd64"]
WINDOWS = "alpha-2.0-cp312-cp312-win_amd64.whl"


def wait_undeclared_and_complete(
    capsys: pytest.CaptureFixture[str], cdn: CDN, guard: tuple[str, ...]
) -> tuple[tuple[int, dict[str, Any], str, float], tuple[int, dict[str, Any], str, float]]:
    """Wait for alpha 2.0 on the mirror, then again with it declared complete."""
    args = ("-i", cdn.simple_url, "alpha==2.0")
    return wait(capsys, *args, guard=guard), wait(
        capsys, *args, guard=("--complete-mirror", *guard)
    )


def test_a_serialless_mirror_behind_by_an_upload_is_still_propagating(
    state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with Origin(profile=SLOW) as mirror, CDN(mirror, edges=1) as cdn:
        mirror.publish("alpha", "1.0")
        fill_cache(cdn, "alpha", api=False)
        serial = mirror.publish("alpha", "2.0")
        guard = ("--changelog", mirror.upstream_changelog_url, "--max-wait", "1")
        (code, doc, err, _), complete = wait_undeclared_and_complete(capsys, cdn, guard)
    # Nothing of the release listed: not visible, declared complete or not.
    assert code == 75, err
    (release,) = doc["releases"]
    assert release["reference"] == "changelog"
    assert all(c["serial"] is None and not c["shows_release"] for c in release["copies"])
    assert "html/gzip lists 0 of 1 files" in release["lagging"]
    assert complete[0] == 75, complete[2]
    assert (
        f"html/gzip (no serial): the page lacks alpha-2.0-py3-none-any.whl, added at serial "
        f"{serial}" in complete[1]["releases"][0]["lagging"]
    )


def test_a_serialless_mirror_filtering_a_platform_holds_no_wait_unless_declared_complete(
    state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upstream has Linux and Windows wheels of alpha 2.0; the mirror carries the Linux one
    only, on purpose. The guard uses such a page (NO-SERIAL): wait does not hold a pipeline
    for a file the mirror never carries, unless the mirror is declared complete."""
    with Origin() as upstream, Origin(profile=SLOW) as filtered:
        for index, kept in ((upstream, TAGS), (filtered, TAGS[:1])):
            index.publish("alpha", "1.0")
            index.publish("alpha", "2.0")
            index.add_wheels("alpha", "2.0", kept)
        with CDN(filtered, edges=1) as cdn:
            guard = ("--changelog", upstream.changelog_url, "--max-wait", "1")
            (code, doc, err, _), declared = wait_undeclared_and_complete(capsys, cdn, guard)
    assert code == 0, err
    (release,) = doc["releases"]
    assert release["state"] == "visible"
    served = {f["filename"]: f["served_after_s"] is not None for f in release["files"]}
    assert served == {
        "alpha-2.0-py3-none-any.whl": True,
        "alpha-2.0-cp312-cp312-manylinux_2_28_x86_64.whl": True,
        WINDOWS: False,
    }
    assert "2 of 3 files on the file host; listed by no copy, filtered or behind" in err
    assert WINDOWS in err
    assert declared[0] == 75, declared[2]
    assert f"(no serial): the page lacks {WINDOWS}, added at serial" in declared[2]


def test_a_serialless_copy_still_listing_a_removed_file_is_waited_for(
    state_dir: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with Origin(profile=SLOW) as mirror, CDN(mirror, edges=1) as cdn:
        mirror.publish("alpha", "1.0")
        mirror.publish("alpha", "2.0")
        mirror.add_wheels("alpha", "2.0", TAGS)
        fill_cache(cdn, "alpha", api=False)
        removed = mirror.remove_file("alpha", WINDOWS)  # a broken wheel taken down
        code, doc, err, _ = wait(
            capsys, "-i", cdn.simple_url, "alpha==2.0",
            guard=("--changelog", mirror.upstream_changelog_url, "--max-wait", "1"),
        )  # fmt: skip
    # A filter never keeps a removed file: not visible on any mirror (pip could pick it).
    assert code == 75, err
    assert (
        f"html/identity (no serial): the page still lists {WINDOWS}, removed at serial {removed}"
        in doc["releases"][0]["lagging"]
    )
