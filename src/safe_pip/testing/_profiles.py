"""Index profiles: how the kinds of package index people install from serve their pages.

An :class:`~._origin.Origin` renders its pages after one of these, so a test can pick the index
it runs against by name (``Origin(profile="bandersnatch")``) instead of setting knobs one by
one. What each profile models, and where that comes from:

- ``pypi``: PyPI itself (Warehouse). The serial in the ``X-PyPI-Last-Serial`` header, in PEP 691
  ``meta._last-serial`` as a JSON number and in the HTML ``<!--SERIAL n-->`` comment; the
  XML-RPC changelog at ``/pypi``; PEP 658/714 metadata files; PEP 700 ``upload-time``,
  ``size`` and ``versions``; PEP 740 ``provenance``; PEP 792 project status (API 1.4). Its CDN
  purges softly: a purged copy is served once more while the edge fetches the new one
  (stale-while-revalidate).
- ``bandersnatch``: a bandersnatch mirror served as static files. The serial as a JSON string of
  digits (``"_last-serial": "37059094"``) and in the HTML comment, no header; no changelog of
  its own (its serials are its upstream's, so the upstream's changelog is an authority for it);
  no metadata files (older versions do not mirror them).
- ``proxy-mirror``: a caching proxy of PyPI of the kind reachable from the project's machines:
  the serial only as a JSON string, no header, no HTML comment; no changelog (405); no metadata
  files; ``upload-time`` missing on some files.
- ``devpi``: devpi-server's mirror index. The serial only in the ``X-PYPI-LAST-SERIAL`` header
  (devpi's tests check it on ``+simple`` pages); PEP 691 JSON since devpi-server 6.6 (devpi
  #986) in its own flavour: API 1.0, no PEP 700 fields; no metadata files; no XML-RPC
  changelog.
- ``plain``: pypiserver, or an Artifactory or Nexus repository, or a directory behind a web
  server: no serial anywhere, HTML only whatever the client asks for (pypiserver #508), no
  metadata files, no upload times, no changelog.

A profile's :meth:`Profile.caching` variant models a caching mirror of the index (an
Artifactory or Nexus remote repository, proxpi, an nginx cache): a :class:`~._cdn.CDN` in
front of it keeps every page for ``cache_ttl`` seconds and is never purged (nothing tells a
mirror that its upstream changed), which is how such mirrors fall behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

SerialForm = Literal["int", "str"]
UploadTimes = Literal["all", "some", "none"]


@dataclass(frozen=True)
class Profile:
    """What an index of one kind puts on its pages (see the module docstring)."""

    name: str
    #: Where the project's serial is given: ``"header"``, ``"json-meta"``, ``"html-comment"``.
    serial_sources: frozenset[str]
    #: ``meta._last-serial`` as a JSON number (``"int"``) or a string of digits (``"str"``).
    json_serial_form: SerialForm = "int"
    #: The index answers the XML-RPC changelog at ``/pypi`` (else 405, as a mirror does).
    changelog: bool = False
    #: PEP 658/714 ``.metadata`` files next to the wheels.
    metadata_files: bool = False
    #: PEP 700 ``upload-time`` on every file, on some (every other one), or on none.
    upload_times: UploadTimes = "none"
    #: The simple API version on pages (PEP 629 ``pypi:repository-version``, JSON api-version).
    api_version: str = "1.0"
    #: PEP 700 ``size`` per file and ``versions`` per project in JSON.
    pep700_fields: bool = False
    #: PEP 740 ``provenance`` per file in JSON.
    provenance: bool = False
    #: PEP 792 project status in JSON and HTML.
    project_status: bool = False
    #: PEP 691 JSON pages; False: HTML whatever the client asks for.
    json_pages: bool = True
    #: The CDN in front purges softly: a purged copy is served once more (swr).
    soft_purge: bool = False
    #: A caching mirror: the CDN in front keeps pages this many seconds, with no purges.
    cache_ttl: float | None = None

    @property
    def has_serial(self) -> bool:
        return bool(self.serial_sources)

    def caching(self, ttl: float) -> Profile:
        """This index behind a caching mirror that keeps pages ``ttl`` seconds, unpurged."""
        if not ttl > 0:
            raise ValueError(f"a caching mirror keeps pages a positive time, not {ttl!r}")
        return replace(self, name=f"{self.name}-cache", cache_ttl=ttl)


PYPI = Profile(
    name="pypi",
    serial_sources=frozenset({"header", "json-meta", "html-comment"}),
    changelog=True,
    metadata_files=True,
    upload_times="all",
    api_version="1.4",
    pep700_fields=True,
    provenance=True,
    project_status=True,
    soft_purge=True,
)
BANDERSNATCH = Profile(
    name="bandersnatch",
    serial_sources=frozenset({"json-meta", "html-comment"}),
    json_serial_form="str",
    upload_times="all",
    api_version="1.1",
    pep700_fields=True,
)
PROXY_MIRROR = Profile(
    name="proxy-mirror",
    serial_sources=frozenset({"json-meta"}),
    json_serial_form="str",
    upload_times="some",
    api_version="1.1",
    pep700_fields=True,
)
DEVPI = Profile(name="devpi", serial_sources=frozenset({"header"}))
PLAIN = Profile(name="plain", serial_sources=frozenset(), json_pages=False)

#: Every profile by name, in the order the README's "Works with" table lists them.
PROFILES: dict[str, Profile] = {p.name: p for p in (PYPI, BANDERSNATCH, PROXY_MIRROR, DEVPI, PLAIN)}


def profile_named(profile: Profile | str) -> Profile:
    """The profile itself, or the one of that name (ValueError naming the known ones)."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"no index profile {profile!r} (known: {known})") from None
