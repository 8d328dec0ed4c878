"""Report formats of ``safe-pip check``: text for people, JSON for scripts, SARIF for dashboards.

SARIF 2.1.0 (OASIS) is what code-scanning dashboards ingest; pip-audit has none (pip-audit
#206). Each finding kind is a SARIF rule, each finding a result located at file:line, so a
dashboard shows it on the line of the requirements or lock file that pins it.
"""

from __future__ import annotations

import enum
import json
import os
import urllib.parse
from typing import Protocol

from safe_pip import __version__
from safe_pip.report.findings import CheckResult, Finding, Kind

#: Where the OASIS SARIF 2.1.0 schema (errata 01) is published.
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)


class Format(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"

    def __str__(self) -> str:
        return self.value

    def render(self, result: CheckResult) -> str:
        renderer: Report
        if self is Format.JSON:
            renderer = JsonReport()
        elif self is Format.SARIF:
            renderer = SarifReport()
        else:
            renderer = TextReport()
        return renderer.render(result)


class Report(Protocol):
    def render(self, result: CheckResult) -> str: ...


def _what(finding: Finding) -> str:
    return f"{finding.project} {finding.version}" if finding.version else finding.project


def _where(finding: Finding) -> str:
    return f"{finding.file}:{finding.line}" if finding.line is not None else finding.file


class TextReport:
    """One line per finding: ``file:line: project version: kind: message``."""

    def render(self, result: CheckResult) -> str:
        lines = []
        for f in result.sorted_findings():
            lines.append(f"{_where(f)}: {_what(f)}: {f.kind}: {f.message}")
        return "".join(line + "\n" for line in lines)


class JsonReport:
    """One document; its keys are a stable interface (``version`` changes if they do)."""

    def render(self, result: CheckResult) -> str:
        document = {
            "version": 1,
            "tool": f"safe-pip {__version__}",
            "files": list(result.files),
            "pins": result.pins,
            "skipped": result.skipped,
            "findings": [f.as_dict() for f in result.sorted_findings()],
            "indexes": [
                {"url": url, "serials": dict(sorted(serials.items()))}
                for url, serials in result.serials.items()
            ],
        }
        return json.dumps(document, indent=2) + "\n"


class SarifReport:
    """A SARIF 2.1.0 log with one run; rules are the finding kinds."""

    def render(self, result: CheckResult) -> str:
        kinds = list(Kind)
        rules = [
            {
                "id": kind.value,
                "name": "".join(part.title() for part in kind.value.split("-")),
                "shortDescription": {"text": kind.summary},
                "defaultConfiguration": {"level": _level(kind)},
            }
            for kind in kinds
        ]
        results = [self._result(f, kinds.index(f.kind)) for f in result.sorted_findings()]
        run = {
            "tool": {
                "driver": {
                    "name": "safe-pip",
                    "version": __version__,
                    "semanticVersion": __version__,
                    "rules": rules,
                }
            },
            "originalUriBaseIds": {"%SRCROOT%": {"uri": _dir_uri(os.getcwd())}},
            "results": results,
            "invocations": [{"executionSuccessful": True}],
            "properties": {
                "indexes": [
                    {"url": url, "serials": dict(sorted(serials.items()))}
                    for url, serials in result.serials.items()
                ]
            },
        }
        log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
        return json.dumps(log, indent=2) + "\n"

    def _result(self, finding: Finding, rule_index: int) -> dict[str, object]:
        uri = _file_uri(finding.file)
        artifact = {"uri": uri}
        if not uri.startswith("file:"):
            artifact["uriBaseId"] = "%SRCROOT%"
        location: dict[str, object] = {"artifactLocation": artifact}
        if finding.line is not None:
            location["region"] = {"startLine": finding.line}
        version = finding.version or ""
        return {
            "ruleId": finding.kind.value,
            "ruleIndex": rule_index,
            "level": _level(finding.kind),
            "message": {"text": f"{_what(finding)}: {finding.message}"},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {
                "safePipPin/v1": f"{finding.kind.value}:{finding.project}:{version}"
            },
        }


def _level(kind: Kind) -> str:
    return kind.level


def _file_uri(path: str) -> str:
    """A relative URI for a file under the working directory, else an absolute file: URI."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    if relative.startswith(os.pardir):
        return "file://" + urllib.parse.quote(absolute.replace(os.sep, "/"))
    return urllib.parse.quote(relative.replace(os.sep, "/"))


def _dir_uri(path: str) -> str:
    uri = "file://" + urllib.parse.quote(os.path.abspath(path).replace(os.sep, "/"))
    return uri if uri.endswith("/") else uri + "/"
