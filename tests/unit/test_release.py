"""A release as the journal tells it (``safe-pip wait``'s reference), and as a page lists it."""

from __future__ import annotations

from safe_pip.index.journal import ChangelogEntry
from safe_pip.index.model import DistFile, ProjectPage
from safe_pip.index.release import release_files, release_in_journal

WHEEL = "Frob_Nicate-2.0-py3-none-any.whl"


def entry(
    serial: int, action: str, version: str | None = "2.0", name: str = "frob-nicate"
) -> ChangelogEntry:
    return ChangelogEntry(name, version, 1_700_000_000 + serial, action, serial)


def test_files_added_and_removed_and_the_serial_to_require() -> None:
    entries = [
        entry(10, "new release"),
        entry(11, f"add py3 file {WHEEL}"),
        entry(12, "add source file frob_nicate-2.0.tar.gz"),
        entry(13, "add cp312 file frob_nicate-2.0-cp312-cp312-win_amd64.whl"),
        entry(14, "remove file frob_nicate-2.0-cp312-cp312-win_amd64.whl"),
        entry(15, "add Owner file", None),  # a user called "file" is no upload
        entry(16, "add py3 file other-2.0-py3-none-any.whl", name="other"),
        entry(17, "add py3 file frob_nicate-2.1-py3-none-any.whl", "2.1"),
    ]
    release = release_in_journal(entries, "Frob.Nicate", "2.0.0")  # PEP 440: 2.0 == 2.0.0
    assert release is not None
    assert release.files == (WHEEL, "frob_nicate-2.0.tar.gz")
    assert (release.serial, release.removed) == (14, False)


def test_never_uploaded_or_removed() -> None:
    assert release_in_journal([entry(10, "new release")], "frob-nicate", "2.0") is None
    assert release_in_journal([entry(11, f"add py3 file {WHEEL}")], "frob-nicate", "3.0") is None
    gone = [entry(11, f"add py3 file {WHEEL}"), entry(12, "remove release")]
    release = release_in_journal(gone, "frob-nicate", "2.0")
    assert release is not None and release.removed and release.serial == 12
    dropped = [entry(11, f"add py3 file {WHEEL}"), entry(12, "remove project", None)]
    assert release_in_journal(dropped, "frob-nicate", "2.0").removed  # type: ignore[union-attr]


def test_release_files_on_a_page() -> None:
    def dist(name: str) -> DistFile:
        return DistFile(name, f"https://files.example/{name}")

    page = ProjectPage(
        "frob-nicate",
        (
            dist(WHEEL),
            dist("frob_nicate-2.0.tar.gz"),
            dist("frob_nicate-1.0.tar.gz"),
            dist("x.egg"),
        ),
    )
    assert list(release_files(page, "Frob_Nicate", "2.0")) == [WHEEL, "frob_nicate-2.0.tar.gz"]
