"""The pages an index serves, written the way its profile writes them.

PEP 503 HTML and PEP 691 JSON project pages, the root ``/simple/`` listing and the JSON API
(``/pypi/<project>/json``), each rendered from a copy of the index state (see
:class:`~._journal.IndexState`) and a :class:`PageStyle`: which serials the pages carry and
in what form, which fields (PEP 658, 700, 740, 792), where the files are.
"""

from __future__ import annotations

import html
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version

from ._http import JSON_TYPE
from ._journal import File, Project, Release
from ._profiles import Profile, SerialForm


@dataclass(frozen=True)
class PageStyle:
    """How an index writes its pages: its profile, and the origin's knobs that override it."""

    profile: Profile
    #: Which of ``"header"``, ``"json-meta"``, ``"html-comment"`` carry the serial.
    serial_sources: Collection[str]
    json_serial_form: SerialForm
    files_url: str  # the file host the pages link to

    def json_serial(self, serial: int) -> int | str:
        """``meta._last-serial`` in the form the simulated index writes it."""
        return str(serial) if self.json_serial_form == "str" else serial


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:  # pragma: no cover - publish() refuses invalid versions
        return (0, version)


def _iso(moment: datetime) -> str:
    # The real index formats naive-UTC datetimes with isoformat() and a literal "Z".
    return moment.isoformat() + "Z"


def _files_of(project: Project) -> list[tuple[Release, File]]:
    """The files a page lists: none of a quarantined project or release (PEP 792)."""
    rows: list[tuple[Release, File]] = []
    if project.status == "quarantined":
        return rows
    for version in sorted(project.releases, key=_version_key):
        release = project.releases[version]
        if release.quarantined:
            continue
        for filename in sorted(release.files):
            rows.append((release, release.files[filename]))
    return rows


def project_page(project: Project, serial: int, media_type: str, style: PageStyle) -> bytes:
    """The body of the project's page in ``media_type`` (PEP 691 JSON or HTML)."""
    if media_type == JSON_TYPE:
        return _project_json(project, serial, style)
    kind, display = style.profile, project.name
    head = [f'    <meta name="pypi:repository-version" content="{kind.api_version}">']
    if kind.project_status:
        status = html.escape(project.status)
        head.append(f'    <meta name="pypi:project-status" content="{status}">')
        if project.status_reason:
            reason = html.escape(project.status_reason)
            head.append(f'    <meta name="pypi:project-status-reason" content="{reason}">')
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        *head,
        f"    <title>Links for {html.escape(display)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {html.escape(display)}</h1>",
    ]
    for release, file in _files_of(project):
        href = html.escape(f"{style.files_url}{file.url_path}#sha256={file.sha256}")
        attrs = [f'href="{href}"']
        if file.requires_python is not None:
            attrs.append(f'data-requires-python="{html.escape(file.requires_python)}"')
        if release.yanked:
            attrs.append(f'data-yanked="{html.escape(release.yanked_reason)}"')
        if file.with_metadata:
            attrs.append(f'data-dist-info-metadata="sha256={file.metadata_sha256}"')
            attrs.append(f'data-core-metadata="sha256={file.metadata_sha256}"')
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(file.filename)}</a><br />")
    lines += ["  </body>", "</html>"]
    if "html-comment" in style.serial_sources:
        lines.append(f"<!--SERIAL {serial}-->")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _project_json(project: Project, serial: int, style: PageStyle) -> bytes:
    kind = style.profile
    meta: dict[str, object] = {"api-version": kind.api_version}
    if "json-meta" in style.serial_sources:
        meta["_last-serial"] = style.json_serial(serial)
    json_files = []
    for number, (release, file) in enumerate(_files_of(project)):
        entry: dict[str, object] = {
            "filename": file.filename,
            "url": style.files_url + file.url_path,
            "hashes": {"sha256": file.sha256},
        }
        if file.requires_python is not None:
            entry["requires-python"] = file.requires_python
        entry["yanked"] = (release.yanked_reason or True) if release.yanked else False
        core: dict[str, str] | bool = (
            {"sha256": file.metadata_sha256} if file.with_metadata else False
        )
        entry["core-metadata"] = core
        entry["data-dist-info-metadata"] = core
        if kind.upload_times == "all" or (kind.upload_times == "some" and number % 2):
            entry["upload-time"] = _iso(file.upload_time)
        if kind.pep700_fields:
            entry["size"] = file.size
        if kind.provenance:
            entry["provenance"] = None  # PyPI writes null for a file without one
        json_files.append(entry)
    body: dict[str, object] = {"meta": meta, "name": project.name, "files": json_files}
    if kind.pep700_fields:
        body["versions"] = sorted(project.releases, key=_version_key)
    if kind.project_status:
        status = {"status": project.status}
        if project.status_reason:
            status["reason"] = project.status_reason
        body["project-status"] = status
    return json.dumps(body).encode("utf-8")


def root_page(
    projects: Iterable[tuple[str, str, int]], serial: int, media_type: str, style: PageStyle
) -> bytes:
    """The ``/simple/`` listing of ``(normalized name, display name, serial)`` rows."""
    if media_type == JSON_TYPE:
        meta: dict[str, object] = {"api-version": style.profile.api_version}
        if "json-meta" in style.serial_sources:
            meta["_last-serial"] = style.json_serial(serial)
        rows = [{"name": name, "_last-serial": style.json_serial(s)} for _, name, s in projects]
        return json.dumps({"meta": meta, "projects": rows}).encode("utf-8")
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{style.profile.api_version}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    for key, name, _ in projects:
        lines.append(f'    <a href="/simple/{key}/">{html.escape(name)}</a>')
    lines += ["  </body>", "</html>"]
    if "html-comment" in style.serial_sources:
        lines.append(f"<!--SERIAL {serial}-->")
    return ("\n".join(lines) + "\n").encode("utf-8")


def json_api(project: Project, serial: int, style: PageStyle) -> bytes:
    """The JSON API's ``/pypi/<project>/json`` of a project with at least one release."""
    releases: dict[str, list[dict[str, object]]] = {}
    for version in sorted(project.releases, key=_version_key):
        release = project.releases[version]
        releases[version] = [
            {
                "filename": file.filename,
                "url": style.files_url + file.url_path,
                "digests": {"sha256": file.sha256},
                "packagetype": "bdist_wheel",
                "python_version": "py3",
                "requires_python": file.requires_python,
                "size": file.size,
                "upload_time_iso_8601": _iso(file.upload_time),
                "yanked": release.yanked,
                "yanked_reason": release.yanked_reason or None,
            }
            for _, file in sorted(release.files.items())
        ]
    live = [v for v, r in project.releases.items() if not r.yanked]
    stable = [v for v in live if not Version(v).is_prerelease]
    latest = max(stable or live or list(project.releases), key=_version_key)
    info = {
        "name": project.name,
        "version": latest,
        "requires_python": next(
            (f.requires_python for f in project.releases[latest].files.values()), None
        ),
        "yanked": project.releases[latest].yanked,
    }
    body: dict[str, object] = {
        "info": info,
        "releases": releases,
        "urls": releases[latest],
        "vulnerabilities": [],
    }
    if "json-meta" in style.serial_sources:
        body["last_serial"] = serial
    return json.dumps(body).encode("utf-8")
