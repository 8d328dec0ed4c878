"""The guard's HTTP session: requests' environment settings, merged once per host."""

from __future__ import annotations

import pytest
import requests

from safe_pip._http import TransportSettings, make_session

URLS = [
    "https://index.example/simple/alpha/",
    "https://index.example/simple/beta/",
    "https://direct.example/simple/alpha/",
    "http://index.example/simple/alpha/",
    "https://index.example:8443/simple/alpha/",
]


@pytest.mark.parametrize("cert", [None, "/etc/ssl/bundle.pem"])
def test_environment_settings_are_requests_own_for_every_host(
    monkeypatch: pytest.MonkeyPatch, cert: str | None
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    session = make_session(TransportSettings(cert=cert))
    reference = requests.Session()
    reference.verify = cert if cert else True
    for _round in range(2):  # the second round is served from the cache
        for url in URLS:
            for verify in (None, True, False):
                ours = session.merge_environment_settings(url, {}, None, verify, None)
                theirs = reference.merge_environment_settings(url, {}, None, verify, None)
                if verify is None and cert:
                    theirs["verify"] = cert  # pip's --cert beats the environment's bundle
                assert ours == theirs, (url, verify)
    assert session.merge_environment_settings(URLS[2], {}, None, None, None)["proxies"] == {}
    got = session.merge_environment_settings(URLS[0], {}, None, None, None)
    assert got["proxies"]["https"] == "http://proxy.example:3128"
    got["proxies"]["https"] = "changed by a caller"  # never reaches the next request
    again = session.merge_environment_settings(URLS[0], {}, None, None, None)
    assert again["proxies"]["https"] == "http://proxy.example:3128"


def test_explicit_proxies_are_merged_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = make_session(TransportSettings())
    given = {"https": "http://other.example:1"}
    merged = session.merge_environment_settings(URLS[0], given, None, None, None)
    assert merged["proxies"]["https"] == "http://other.example:1"
    plain = session.merge_environment_settings(URLS[0], {}, None, None, None)
    assert plain["proxies"]["https"] == "http://proxy.example:3128"
