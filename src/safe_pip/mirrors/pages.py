"""Reading a mirror's project pages: concurrently, with a bound, and asking devpi to refetch.

Concurrent because a full audit reads tens of thousands of pages, each a round trip; bounded
because the mirror serves its users too (``--jobs``, 8 by default: about what a small mirror's
web server gives one client without queueing others).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from safe_pip.errors import MalformedPage
from safe_pip.index.pages import JSON_CONTENT_TYPE, page_serial, parse_page
from safe_pip.mirrors.judge import Seen
from safe_pip.net.http import Response, Session, TransportError
from safe_pip.net.urls import strip_credentials

__all__ = ["DEFAULT_JOBS", "MirrorPages"]

DEFAULT_JOBS = 8
#: JSON first (it carries the serial on bandersnatch mirrors and devpi), HTML where there is none.
_ACCEPT = f"{JSON_CONTENT_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
#: Answers worth asking again, once, after a pause (as bandersnatch retries a page).
_RETRY = {408, 429, 500, 502, 503, 504}


class MirrorPages:
    """One mirror's project pages under ``url`` (its simple index, ending in ``/``)."""

    def __init__(
        self,
        session: Session,
        url: str,
        *,
        jobs: int = DEFAULT_JOBS,
        retry_after: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.url = url if url.endswith("/") else url + "/"
        self.display = strip_credentials(self.url)
        self.jobs = max(1, jobs)
        self.retry_after = retry_after
        self.sleep = sleep

    def page_url(self, project: str) -> str:
        return f"{self.url}{quote(project)}/"

    def read_all(self, projects: Sequence[str]) -> Iterator[tuple[str, Seen]]:
        """Each project with what the mirror answered, as they come (``jobs`` at a time)."""
        pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="mirror-page")
        try:
            yield from zip(projects, pool.map(self.read, projects), strict=True)
        finally:
            # Ctrl-C in a full audit: drop the pages not yet asked for, not wait for them.
            pool.shutdown(cancel_futures=True)

    def read(self, project: str) -> Seen:
        """What the mirror answers for one project's page (never raises for its failures)."""
        url = self.page_url(project)
        for attempt in (1, 2):
            try:
                with self.session.get(url, headers={"Accept": _ACCEPT}) as response:
                    status = response.status_code
                    if status in (404, 410):
                        return Seen("missing")
                    if status == 200:
                        return _seen(response, url)
                    failure = f"HTTP {status} for {strip_credentials(url)}"
            except TransportError as exc:
                status, failure = 0, str(exc)
            if attempt == 1 and (status == 0 or status in _RETRY):
                self.sleep(self.retry_after)
                continue
            break
        return Seen("failed", reason=failure)

    def refresh(self, project: str) -> str | None:
        """Ask devpi to refetch the project from its upstream (POST to the page's
        ``refresh``, devpi-server's per-project button); None when done, else why not."""
        url = self.page_url(project) + "refresh"
        try:
            response = self.session.post(url, data=b"", timeout=None)
        except TransportError as exc:
            return str(exc)
        # devpi answers 302 to the page; the session follows no redirect for a POST.
        if response.status_code in (200, 204, 302, 303):
            return None
        return f"HTTP {response.status_code} for {strip_credentials(url)}"


def _seen(response: Response, url: str) -> Seen:
    try:
        page = parse_page(
            response.content,
            content_type=response.headers.get("Content-Type", ""),
            url=response.url,
            headers=response.headers,
        )
        serial = page_serial(page, url)
    except MalformedPage as exc:
        return Seen("failed", reason=str(exc))
    return Seen("page", serial, {f.filename: f.yanked for f in page.files})
