"""Building a guard for one run: options, transport, authorities and memory wired together.

``install`` (through pip), ``check`` (no pip) and the other commands share this, so every
command judges pages the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from safe_pip.authority.changelog import CallRecord, ChangelogAuthority, ChangelogClient
from safe_pip.authority.state import StateStore
from safe_pip.errors import SafePipError
from safe_pip.guard.asofview import AsOfView
from safe_pip.guard.filecache import FileCache
from safe_pip.guard.guard import Guard
from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.memory import give_memory_back
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.refusals import Refusal
from safe_pip.net.http import TransportSettings, make_session
from safe_pip.net.urls import strip_credentials
from safe_pip.pip.cmdline import PipSettings, default_changelog_url, default_index_url


def transport_of(settings: PipSettings) -> TransportSettings:
    return TransportSettings(
        timeout=settings.timeout,
        cert=settings.cert,
        client_cert=settings.client_cert,
        proxy=settings.proxy,
        trusted_hosts=settings.trusted_hosts,
        keyring_provider=settings.keyring_provider,
    )


def same_index(a: str, b: str) -> bool:
    return strip_credentials(a).rstrip("/").lower() == strip_credentials(b).rstrip("/").lower()


class GuardSetup:
    """One guard with its session, its state store and its indexes; ``pool``: connections
    kept per host (as many as the client asks for at once, or urllib3 drops the rest)."""

    def __init__(
        self,
        options: GuardOptions,
        transport: TransportSettings,
        *,
        store: StateStore | None = None,
        say: Callable[[str], None],
        on_refuse: Callable[[Refusal], None] = lambda refusal: None,
        pool: int = 16,
    ) -> None:
        give_memory_back()  # before the guard's threads start
        self.options = options
        self.transport = transport
        self.store = store or StateStore()
        self.session = make_session(transport, pool=pool)
        self.as_of: AsOfView | None = None
        if options.as_of is not None:
            self.as_of = AsOfView(
                options.as_of, strict=options.strict, max_wait=options.max_wait, say=say
            )
        self.guard = Guard(
            self.session,
            transport,
            max_wait=options.max_wait,
            strict=options.strict,
            on_refuse=on_refuse,
            say=say,
            page_filter=self.as_of,
            file_cache=FileCache(),
        )

    def add_planned(self, calls: Iterable[tuple[str, bool, str]]) -> None:
        """Guard the indexes pip was pointed at before the guard existed, as
        ``(url, main, proxied)`` in the order they were numbered; raises if the guard would
        serve one at another URL than pip was given."""
        for url, main, proxied in calls:
            entry = self.add_index(url, main=main)
            if entry is None or self.guard.index_url(entry) != proxied:
                raise RuntimeError(f"safe-pip bug: index {url} was not given {proxied}")

    def add_index(self, url: str, *, main: bool = False) -> IndexEntry | None:
        """Guard one index (None for local ``file://`` indexes, which no cache sits before).

        ``--changelog`` and ``--origin`` belong to the main index; an index that is pip's
        default (PyPI) gets PyPI's own changelog unless told otherwise.
        """
        if not url.startswith(("http://", "https://")):
            return None
        self.session.add_index(url)
        changelog_url = self.options.changelog if main else None
        complete = main and self.options.complete_mirror
        if changelog_url is None and (complete or same_index(url, default_index_url())):
            changelog_url = default_changelog_url()
        # A changelog named for a mirror may have to judge serial-less pages by content, which
        # needs the window's file events; PyPI's own pages carry serials and need none.
        keep_files = complete or bool(main and self.options.changelog)
        authority = None
        client = None
        if changelog_url:
            client = ChangelogClient(
                changelog_url,
                self.session,
                timeout=self.transport.timeout,
                on_call=self._record_call,
            )
            authority = ChangelogAuthority(
                client, self.store, url, max_wait=self.options.max_wait, keep_files=keep_files
            )
        entry = self.guard.add_index(
            url,
            changelog=authority,
            changelog_url=changelog_url,
            origin=self.options.origin if main else None,
            remembered=self.store.remembered(url),
        )
        entry.complete_mirror = complete
        if self.as_of is not None:
            self.as_of.add_index(entry, client, main=main)
        return entry

    def _record_call(self, record: CallRecord) -> None:
        self.guard.run.add_call(
            "changelog",
            record.method,
            record.url,
            record.status,
            round(record.elapsed_ms),
            record.error,
        )

    def keep(self, say: Callable[[str], None]) -> None:
        """Keep what the run learnt: the serials accepted (the no-rollback memory), even after
        a refusal; and trim the file cache if the run added to it."""
        self.guard.authorities.finish()  # the changelog summaries, saved once pages had them
        for entry in self.guard.indexes:
            seen = self.guard.seen_serials(entry)
            if seen:
                try:
                    self.store.remember(entry.upstream, seen)
                except (SafePipError, OSError, ValueError) as exc:
                    say(f"warning: could not remember serials: {exc}")
        if self.guard.file_cache is not None:
            self.guard.file_cache.prune()
