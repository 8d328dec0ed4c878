"""What a prefetch reads to learn which pages pip will ask for next.

The top-level names of a pip command, the ``Requires-Dist`` lines of a distribution's core
metadata (a PEP 658 ``.metadata`` file, or a wheel's ``METADATA``), the PEP 508 marker
environment they are evaluated in, and the wheel pip would most likely pick from a page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import zipfile
from collections.abc import Iterable, Mapping
from email.parser import BytesHeaderParser
from typing import IO

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from safe_pip.index.model import OneHash
from safe_pip.index.pages import DistFile, ProjectPage
from safe_pip.pip.cmdline import PipCommand
from safe_pip.pip.requirements import ReqLine

logger = logging.getLogger("safe_pip")

#: Metadata bigger than this is not read for dependencies (real METADATA files are KBs).
MAX_METADATA = 4 * 1024 * 1024
#: Where an index has no PEP 658 files, a guessed wheel is fetched ahead to read its METADATA
#: only up to this size (PEP 700 ``size``): pip downloads the wheel it picks anyway, so a right
#: guess costs nothing, and a wrong one at most this.
MAX_WHEEL_AHEAD = 16 * 1024 * 1024
#: pip's options (by destination) that make the target's tags differ from pip's own. pip
#: still evaluates markers for the interpreter it runs under with these (only ``--python``
#: changes that interpreter), so markers are evaluated as before; only the wheel pip would
#: pick is unknown.
_OTHER_ENVIRONMENT = ("platforms", "python_version", "implementation", "abis")
#: Seconds the target interpreter has to tell its marker environment.
ASK_TIMEOUT = 10.0
#: The variables of a PEP 508 marker environment (``default_environment``'s keys).
ENVIRONMENT_KEYS = (
    "implementation_name", "implementation_version", "os_name", "platform_machine",
    "platform_release", "platform_system", "platform_version", "python_full_version",
    "platform_python_implementation", "python_version", "sys_platform",
)

#: Run by the target interpreter (``-I -S``: nothing from its environment or site-packages,
#: which may lack packaging): the keys and values of ``packaging.markers.default_environment``.
_ENVIRONMENT_SCRIPT = """
import json, os, platform, sys
def full(info):
    text = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        text += info.releaselevel[0] + str(info.serial)
    return text
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": full(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


def top_level(cmd: PipCommand, lines: Iterable[ReqLine]) -> list[Requirement]:
    """Requirements pip will look up by name: its arguments, then the requirement lines of its
    requirements files (``lines``, as the runner read them; constraints are left out)."""
    found: list[Requirement] = []
    for spec in cmd.positionals:
        with contextlib.suppress(InvalidRequirement):
            req = Requirement(spec)
            if req.url is None:
                found.append(req)
    for line in lines:
        if line.kind == "requirement" and line.requirement is not None and not line.constraint:
            found.append(line.requirement)
    return found


def target_environment(cmd: PipCommand, python: str | None) -> bool:
    """Whether pip resolves for the interpreter safe-pip runs under, tags and Python version
    included (the wheel pip will pick can be guessed)."""
    if python or cmd.value("python"):
        return False
    return not any(cmd.value(dest) for dest in _OTHER_ENVIRONMENT)


def marker_environment(python: str, timeout: float = ASK_TIMEOUT) -> dict[str, str] | None:
    """The PEP 508 marker environment of another interpreter, asked once; None if it cannot
    tell (then every dependency is prefetched)."""
    try:
        proc = subprocess.run(
            [python, "-I", "-S", "-c", _ENVIRONMENT_SCRIPT],
            capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )
        found = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        logger.debug("prefetch: no marker environment from %s: %s", python, exc)
        return None
    if not (
        isinstance(found, dict)
        and set(found) == set(ENVIRONMENT_KEYS)
        and all(isinstance(value, str) for value in found.values())
    ):
        logger.debug(
            "prefetch: no marker environment from %s (exit %s): %r",
            python, proc.returncode, proc.stderr[-500:],
        )
        return None
    return found


def requires_dist(metadata: bytes) -> list[Requirement]:
    """The ``Requires-Dist`` lines of a core metadata file (unparseable lines are skipped)."""
    headers = BytesHeaderParser().parsebytes(metadata)
    found = []
    for line in headers.get_all("Requires-Dist") or []:
        with contextlib.suppress(InvalidRequirement):
            found.append(Requirement(str(line)))
    return found


def wheel_metadata(handle: IO[bytes]) -> bytes | None:
    """A wheel's ``.dist-info/METADATA`` (the zip's directory is read, not the whole file)."""
    try:
        with zipfile.ZipFile(handle) as zf:
            for info in zf.infolist():
                top, _, rest = info.filename.partition("/")
                if top.endswith(".dist-info") and rest == "METADATA":
                    if info.file_size > MAX_METADATA:
                        return None
                    return zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return None



def best_candidate(
    page: ProjectPage,
    specifier: SpecifierSet,
    tags: frozenset[Tag],
    python: str,
    *,
    metadata: bool = True,
) -> DistFile | None:
    """The wheel pip would most likely pick for a fresh install: the newest allowed version.

    ``metadata``: only wheels with PEP 658 metadata hashes count (their metadata can be
    verified and read without downloading the wheel; a wrong guess costs one small download);
    False: any wheel with hashes (for an index without PEP 658 files, where pip reads the
    chosen wheel's own METADATA). Versions are tried newest first, and only the newest allowed
    version's files have their tags read: a big project's page lists thousands of wheels.
    """
    by_version: dict[Version, list[DistFile]] = {}
    parsed: dict[str, Version | None] = {}
    for dist in page.files:
        if dist.yanked or not (_metadata_hashes(dist) if metadata else dist.hashes):
            continue  # (without hashes, the wheel's bytes could not be verified)
        parts = dist.filename.split("-")
        if not dist.filename.endswith(".whl") or len(parts) not in (5, 6):
            continue  # not a wheel name (parse_wheel_filename would refuse it)
        if parts[1] not in parsed:
            try:
                parsed[parts[1]] = Version(parts[1])
            except InvalidVersion:
                parsed[parts[1]] = None
        version = parsed[parts[1]]
        if version is not None:
            by_version.setdefault(version, []).append(dist)
    requires: dict[str, bool] = {}
    for version in sorted(by_version, reverse=True):
        if version.is_prerelease and not specifier.prereleases:
            continue  # pip takes a pre-release only when asked (or when nothing else fits)
        if not specifier.contains(version, prereleases=True):
            continue
        for dist in by_version[version]:
            try:
                _, _, _, file_tags = parse_wheel_filename(dist.filename)
            except (InvalidWheelFilename, InvalidVersion):
                continue
            if tags.isdisjoint(file_tags):
                continue
            if dist.requires_python and not _python_fits(dist.requires_python, python, requires):
                continue
            return dist
    return None


def _metadata_hashes(dist: DistFile) -> bool:
    """Whether a file's PEP 658 metadata is listed with hashes (not just true, or absent)."""
    value = dist.core_metadata
    if not value or value is True:
        return False
    # (type() first: isinstance against the Mapping ABC is slow, and this runs per file.)
    return type(value) in (dict, OneHash) or isinstance(value, Mapping)


def _python_fits(requires_python: str, python: str, seen: dict[str, bool]) -> bool:
    """Whether ``python`` meets a Requires-Python value (a malformed one: no), each value
    parsed once per page."""
    if requires_python not in seen:
        try:
            seen[requires_python] = SpecifierSet(requires_python).contains(
                python, prereleases=True
            )
        except InvalidSpecifier:
            seen[requires_python] = False
    return seen[requires_python]


def marker_true(marker: Marker, environment: dict[str, str] | None, extra: str) -> bool:
    """Whether ``marker`` holds with this ``extra`` in ``environment`` (None: the target
    interpreter could not tell its environment, so the dependency is prefetched anyway: a
    superset is harmless, pip asks for what it needs)."""
    if environment is None:
        return True
    try:
        return marker.evaluate({**environment, "extra": extra})
    except Exception:  # noqa: BLE001 - an unknown variable or form: prefetch anyway
        return True


def project_of(filename: str) -> str:
    """The project a distribution file belongs to (wheel and sdist names start with it)."""
    stem = filename.split("-", 1)[0] if "-" in filename else filename
    return canonicalize_name(stem)

