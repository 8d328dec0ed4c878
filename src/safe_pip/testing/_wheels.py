"""Minimal, installable pure-Python wheels built in memory for the simulated index.

The simulator needs real files so that real pip can download, hash-check and install them;
building them here (instead of shipping binary fixtures) keeps every test self-describing.
Output is deterministic (fixed zip timestamps and order) so that hashes on index pages are
stable across runs and can be compared by tests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable

from packaging.utils import canonicalize_name

# The earliest timestamp a zip file can hold; any fixed value makes the bytes reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def wheel_name_part(name: str) -> str:
    """The PEP 427 form of a project name: canonical (PEP 503) with ``-`` as ``_``."""
    return canonicalize_name(name).replace("-", "_")


def wheel_filename(name: str, version: str) -> str:
    """The file name :func:`build_wheel` gives a wheel of ``name`` ``version``."""
    return f"{wheel_name_part(name)}-{version}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


#: ``extra == "name"`` in a requirement's marker.
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


def _metadata(
    name: str, version: str, requires: Iterable[str], requires_python: str | None
) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {req}" for req in requires)
    # Declared as build back-ends do: pip drops a requested extra the metadata does not
    # provide (with a warning), and with it the dependencies behind it.
    extras = dict.fromkeys(e for req in requires for e in _EXTRA_MARKER.findall(req))
    lines.extend(f"Provides-Extra: {extra}" for extra in extras)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def build_wheel(
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    payload_size: int = 0,
) -> tuple[str, bytes]:
    """Build a ``py3-none-any`` wheel of ``name`` ``version``; return ``(filename, bytes)``.

    The wheel holds a package ``<name_with_underscores>/__init__.py`` that sets
    ``__version__`` (so a test can import what pip installed and see which version won),
    the ``.dist-info`` files pip requires, and a ``RECORD`` with correct hashes and sizes.
    ``payload_size`` adds a data file of that many (zero) bytes, stored uncompressed so that
    the wheel really is that large on the wire (for memory benchmarks).
    """
    if payload_size < 0:
        raise ValueError("payload_size must be >= 0")
    part = wheel_name_part(name)
    dist_info = f"{part}-{version}.dist-info"
    files: list[tuple[str, bytes, int]] = [
        (f"{part}/__init__.py", f'__version__ = "{version}"\n'.encode(), zipfile.ZIP_DEFLATED),
    ]
    if payload_size:
        # Zero bytes cost nothing to generate; ZIP_STORED keeps the wheel at full size.
        files.append((f"{part}/_payload.bin", bytes(payload_size), zipfile.ZIP_STORED))
    files.append(
        (
            f"{dist_info}/METADATA",
            _metadata(name, version, requires, requires_python),
            zipfile.ZIP_DEFLATED,
        )
    )
    wheel_file = (
        "Wheel-Version: 1.0\n"
        "Generator: safe-pip-testing\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    files.append((f"{dist_info}/WHEEL", wheel_file.encode("ascii"), zipfile.ZIP_DEFLATED))
    record_lines = [f"{path},{_record_hash(data)},{len(data)}" for path, data, _ in files]
    record_lines.append(f"{dist_info}/RECORD,,")
    files.append(
        (f"{dist_info}/RECORD", ("\n".join(record_lines) + "\n").encode(), zipfile.ZIP_DEFLATED)
    )

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data, compression in files:
            info = zipfile.ZipInfo(path, date_time=_ZIP_EPOCH)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return wheel_filename(name, version), buf.getvalue()


def metadata_of(wheel_bytes: bytes) -> bytes:
    """The ``.dist-info/METADATA`` file of a wheel (what PEP 658 serves as ``.metadata``)."""
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zf:
        for path in zf.namelist():
            top, _, rest = path.partition("/")
            if top.endswith(".dist-info") and rest == "METADATA":
                return zf.read(path)
    raise ValueError("wheel has no .dist-info/METADATA")
