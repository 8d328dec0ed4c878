"""What ``safe-pip wait`` says: a progress line per release at a calm rate, one line per
release at the end, and the JSON document for pipelines (``--format json``)."""

from __future__ import annotations

import json

from safe_pip import __version__
from safe_pip.guard.propagation import ReleaseWatch
from safe_pip.net.urls import strip_credentials

#: The JSON document's shape; changes if its keys do.
FORMAT_VERSION = 1


def _reference(watch: ReleaseWatch) -> str:
    note = f": {watch.reference_note}" if watch.reference_note else ""
    fallback = f"; {watch.fallback}" if watch.fallback else ""
    return f"reference: the {watch.reference}{note}{fallback}"


def progress_line(watch: ReleaseWatch, index: str, left: float) -> str:
    lagging = "; ".join(watch.lagging()) or "checking"
    return f"waiting for {watch.project} {watch.version} on {index}: {lagging} ({left:.0f} s left)"


def final_line(watch: ReleaseWatch, index: str, max_wait: float) -> str:
    what = f"{watch.project} {watch.version}"
    if watch.no_release is not None:
        return f"{what}: no such release on {index}: {watch.no_release}; not waiting"
    if watch.visible_after is not None:
        order = ", ".join(
            f"{c.variant} at {c.first_shown:.1f} s"
            for c in sorted(watch.copies.values(), key=lambda c: c.first_shown or 0.0)
        )
        unlisted = [f.filename for f in watch.files.values() if f.url is None]
        files = f"{len(watch.files)} file{'' if len(watch.files) == 1 else 's'} on the file host"
        if unlisted:
            # Visible without them: a mirror not declared complete may filter files out.
            files = (
                f"{len(watch.files) - len(unlisted)} of {files}; listed by no copy, filtered "
                f"or behind (--complete-mirror requires them): {', '.join(unlisted)}"
            )
        return (
            f"{what}: visible everywhere after {watch.visible_after:.1f} s: "
            f"{len(watch.copies)} copies of the page on {index} ({order}), {files} "
            f"({_reference(watch)})"
        )
    lagging = "; ".join(watch.lagging())
    return (
        f"{what}: still propagating after {max_wait:g} s on {index}: {lagging} "
        f"({_reference(watch)})"
    )


def json_document(watches: list[ReleaseWatch], index: str, exit_code: int) -> str:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    releases = []
    for w in watches:
        if w.no_release is not None:
            state = "no-such-release"
        elif w.visible_after is not None:
            state = "visible"
        else:  # not waited for when another release is not on the index (exit 1)
            state = "not-waited" if exit_code == 1 else "propagating"
        releases.append(
            {
                "project": w.project,
                "version": w.version,
                "state": state,
                "reason": w.no_release,
                "reference": w.reference,
                "reference_note": w.reference_note,
                "fallback": w.fallback,
                "required_serial": w.required,
                "visible_after_s": rounded(w.visible_after),
                "copies": [
                    {
                        "variant": c.variant,
                        "serial": c.serial,
                        "files_listed": c.listed,
                        "shows_release": c.shows,
                        "first_shown_after_s": rounded(c.first_shown),
                        "problem": c.problem,
                    }
                    for c in w.copies.values()
                ],
                "files": [
                    {
                        "filename": f.filename,
                        "url": None if f.url is None else strip_credentials(f.url),
                        "served_after_s": rounded(f.served_after),
                        "problem": f.problem,
                    }
                    for f in w.files.values()
                ],
                "lagging": [] if w.no_release else w.lagging(),
            }
        )
    document = {
        "version": FORMAT_VERSION,
        "tool": f"safe-pip {__version__}",
        "index": index,
        "exit_code": exit_code,
        "releases": releases,
    }
    return json.dumps(document, indent=2) + "\n"
