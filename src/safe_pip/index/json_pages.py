"""PEP 691 JSON project pages (with PEP 700 and PEP 714 keys): parsed strictly, rendered as
API 1.1.

``null`` counts as absent for the optional keys, as the real index sends
``"requires-python": null`` and pip tolerates it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from safe_pip.errors import MalformedPage
from safe_pip.index.fields import (
    check_api_version,
    check_filename,
    check_hashes,
    fragment_hashes,
    name_from_url,
    page_hashes,
    serial_from_json,
    split_file_url,
)
from safe_pip.index.model import (
    RENDERED_API_VERSION,
    DistFile,
    ProjectPage,
    SerialSource,
    compact_hashes,
    hash_dict,
)

__all__ = ["parse_json", "render_json"]


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate object keys: parsers disagree on which one wins (RFC 8259 4)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python extensions, not RFC 8259


def parse_json(text: str, url: str, serials: dict[SerialSource, int]) -> ProjectPage:
    """A PEP 691 project page (with PEP 700 and PEP 714 keys), decoded to ``text``.

    ``serials`` holds what the response headers gave; ``meta._last-serial`` is added to it.
    """
    try:
        data = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:
        raise MalformedPage(url, f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedPage(url, f"JSON page is a {type(data).__name__}, not an object")

    meta = data.get("meta")
    if not isinstance(meta, dict):
        raise MalformedPage(url, "JSON page has no meta object")
    if "api-version" not in meta:
        raise MalformedPage(url, "JSON page has no meta.api-version")
    api_version = check_api_version(meta["api-version"], "meta.api-version", url)
    if meta.get("_last-serial") is not None:
        serials["json-meta"] = serial_from_json(meta["_last-serial"], "meta._last-serial", url)

    name = data.get("name")
    if name is None:
        name = name_from_url(url)
    elif not isinstance(name, str):
        raise MalformedPage(url, f"JSON name is {name!r}, not a string")

    versions = data.get("versions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise MalformedPage(url, "JSON versions is not a list of strings")
        versions = tuple(versions)

    raw_files = data.get("files")
    if not isinstance(raw_files, list):
        raise MalformedPage(url, "JSON files is not a list")
    shared: dict[str, str] = {}
    files = tuple(
        _json_file(raw, f"files[{i}]", url, shared) for i, raw in enumerate(raw_files)
    )
    status, reason = _project_status(data.get("project-status"))
    return ProjectPage(
        name=name,
        files=files,
        serials=serials,
        versions=versions,
        api_version=api_version,
        fmt="json",
        status=status,
        status_reason=reason,
    )


def _project_status(value: object) -> tuple[str | None, str | None]:
    """PEP 792 ``project-status``: ``{"status": ..., "reason": ...}``.

    Read leniently: the status changes nothing an installer picks, so a page whose status
    cannot be read is not refused as malformed; its status is just unknown.
    """
    if not isinstance(value, dict):
        return None, None
    status, reason = value.get("status"), value.get("reason")
    return (
        status if isinstance(status, str) and status else None,
        reason if isinstance(reason, str) and reason else None,
    )


def _json_file(raw: object, where: str, url: str, shared: dict[str, str]) -> DistFile:
    """One entry of ``files``. ``null`` counts as absent for the optional keys (the real
    index sends ``"requires-python": null``).

    Written for speed (a page can list thousands of files): the optional keys are checked
    inline, in the order the checks have always run, so the same entry fails the same way.
    ``shared``: the page's Requires-Python values, one object each however many files repeat
    it (the page is kept for the whole run).
    """
    if not isinstance(raw, dict):
        raise MalformedPage(url, f"{where} is not an object")
    get = raw.get

    filename = get("filename")
    if not isinstance(filename, str) or not filename:
        raise MalformedPage(url, f"{where} has no filename")
    check_filename(filename, where, url)
    href = get("url")
    if not isinstance(href, str) or not href.strip():
        raise MalformedPage(url, f"{where} ({filename}) has no url")
    file_url, fragment = split_file_url(url, href)

    hashes_raw = get("hashes")
    if hashes_raw is not None and not isinstance(hashes_raw, dict):
        _wrong_type(url, where, "hashes", hashes_raw)
    if fragment:
        hashes_given = check_hashes((hashes_raw or {}).items(), f"{where}.hashes", url)
        # pip merges hashes from a URL fragment too; a conflict is an inconsistent page.
        for hash_name, digest in fragment_hashes(fragment, f"{where}.url", url).items():
            if hashes_given.setdefault(hash_name, digest) != digest:
                raise MalformedPage(
                    url, f"{where}: url fragment and hashes disagree on {hash_name}"
                )
        hashes = compact_hashes(hashes_given)
    else:
        hashes = page_hashes(hashes_raw or {}, f"{where}.hashes", url)

    # PEP 592 / 691: false, true, or a reason string. "" is outside the spec; pip reads it as
    # not yanked, uv as yanked: we take the safe side (yanked, no reason).
    yanked_raw = get("yanked")
    if yanked_raw is not None and not isinstance(yanked_raw, (bool, str)):
        _wrong_type(url, where, "yanked", yanked_raw)
    yanked = yanked_raw is not None and yanked_raw is not False
    reason = yanked_raw if isinstance(yanked_raw, str) and yanked_raw else None

    # PEP 714: core-metadata wins; dist-info-metadata is the PEP 691 name, and the real index
    # still sends data-dist-info-metadata (its pre-PEP 714 bug, warehouse #13705).
    metadata: Mapping[str, str] | bool | None = None
    for key in ("core-metadata", "dist-info-metadata", "data-dist-info-metadata"):
        value = get(key)
        if value is None:
            continue
        if not isinstance(value, (bool, dict)):
            _wrong_type(url, where, key, value)
        if isinstance(value, dict):
            metadata = page_hashes(value, f"{where}.{key}", url) or True
        else:
            metadata = True if value else None
        break

    size = get("size")
    if size is not None and not isinstance(size, int):
        _wrong_type(url, where, "size", size)
    if isinstance(size, bool) or (size is not None and size < 0):
        raise MalformedPage(url, f"{where}.size is {size!r}, not a non-negative integer")

    requires_python = get("requires-python")
    if requires_python is not None:
        if not isinstance(requires_python, str):
            _wrong_type(url, where, "requires-python", requires_python)
        requires_python = shared.setdefault(requires_python, requires_python)
    gpg_sig = get("gpg-sig")
    if gpg_sig is not None and not isinstance(gpg_sig, bool):
        _wrong_type(url, where, "gpg-sig", gpg_sig)
    upload_time = get("upload-time")
    if upload_time is not None and not isinstance(upload_time, str):
        _wrong_type(url, where, "upload-time", upload_time)

    return DistFile(
        filename=filename,
        url=file_url,
        hashes=hashes,
        requires_python=requires_python or None,
        yanked=yanked,
        yanked_reason=reason,
        core_metadata=metadata,
        gpg_sig=gpg_sig,
        upload_time=upload_time,
        size=size,
    )


def _wrong_type(url: str, where: str, key: str, value: object) -> NoReturn:
    raise MalformedPage(url, f"{where}.{key} is {value!r}, of the wrong type")


def render_json(
    page: ProjectPage, *, rewrite_url: Callable[[str], str], serial: int | None
) -> bytes:
    """A PEP 691 JSON page (API 1.1, PEP 700) listing ``page``'s files.

    Each file URL goes through ``rewrite_url`` (the proxy routes downloads through itself).
    PEP 658 metadata is written as ``core-metadata`` only: PEP 714 says servers should not
    send the old ``dist-info-metadata`` key in JSON, because pip 22.3 to 23.1 crash on it;
    pip versions older than that do not read JSON pages at all, so nothing is lost.
    ``serial`` becomes ``meta._last-serial`` when given.
    """
    meta: dict[str, object] = {"api-version": RENDERED_API_VERSION}
    if serial is not None:
        meta["_last-serial"] = serial
    document: dict[str, object] = {"meta": meta, "name": page.name}
    if page.versions is not None:
        document["versions"] = list(page.versions)
    document["files"] = []
    # The files are written a batch at a time, so a page of thousands never has all its
    # entries built at once, nor its whole text beside its bytes.
    head = _dumps(document)[:-2]  # without the empty list's "]" and the object's "}"
    pieces = [head.encode("ascii")]
    files = page.files
    for start in range(0, len(files), _RENDER_BATCH):
        batch = [_json_entry(f, rewrite_url) for f in files[start : start + _RENDER_BATCH]]
        text = _dumps(batch)[1:-1]
        pieces.append((f",{text}" if start else text).encode("ascii"))
    pieces.append(b"]}")
    return b"".join(pieces)


#: Files rendered per ``json.dumps`` call.
_RENDER_BATCH = 256


def _dumps(value: object) -> str:
    # ensure_ascii: the body is plain ASCII whatever the names contain (even lone surrogates).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _json_entry(dist: DistFile, rewrite_url: Callable[[str], str]) -> dict[str, object]:
    entry: dict[str, object] = {
        "filename": dist.filename,
        "url": rewrite_url(dist.url),
        "hashes": hash_dict(dist.hashes),
    }
    if dist.requires_python is not None:
        entry["requires-python"] = dist.requires_python
    entry["yanked"] = (dist.yanked_reason or True) if dist.yanked else False
    if dist.core_metadata is not None and dist.core_metadata is not False:
        entry["core-metadata"] = (
            True if isinstance(dist.core_metadata, bool) else hash_dict(dist.core_metadata)
        )
    if dist.gpg_sig is not None:
        entry["gpg-sig"] = dist.gpg_sig
    if dist.upload_time is not None:
        entry["upload-time"] = dist.upload_time
    if dist.size is not None:
        entry["size"] = dist.size
    return entry
