"""What the environment says about reaching an index: proxy variables and ``no_proxy``, the
user's netrc, and the CAs to trust. Read the way requests read them (its ``trust_env``
rules), so the guard's client (``_http``) reaches indexes as pip's own session would."""

from __future__ import annotations

import base64
import os
import socket
import ssl


def basic(user: str, password: str) -> str:
    """An ``Authorization`` (or ``Proxy-Authorization``) value for HTTP Basic."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def environment_proxies() -> dict[str, str]:
    """Proxy variables as requests read them: lower case beats upper case; empty is unset."""
    found: dict[str, str] = {}
    for name, value in os.environ.items():
        lower = name.lower()
        if value and lower.endswith("_proxy") and (lower == name or lower not in os.environ):
            found[lower[: -len("_proxy")]] = value
    return found


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` exempts a host: ``*``, a domain (and its subdomains), ``host:port``,
    an IP address or a CIDR range (as requests reads it)."""
    host = host.lower()
    for raw in no_proxy.replace(" ", "").split(","):
        entry = raw.lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry or _is_ip(host):
            if _in_network(host, entry):
                return True
            continue
        name, _, want_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if want_port and want_port != str(port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _in_network(host: str, entry: str) -> bool:
    import ipaddress  # only for an IP host or a CIDR entry

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def netrc_auth(host: str) -> str | None:
    """``Authorization`` from the user's netrc for a host (requests' ``trust_env`` rule)."""
    names = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for name in names:
        path = os.path.expanduser(name)
        if not os.path.exists(path):
            continue
        import netrc  # only when the user has one

        try:
            found = netrc.netrc(path).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            return None  # requests ignores a netrc it cannot read
        if found is None:
            return None
        login, account, password = found
        return basic(login or account or "", password or "")
    return None


def environment_bundle() -> str | None:
    """A CA bundle the environment names (``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def load_default_trust(context: ssl.SSLContext) -> None:
    """The system's trusted CAs (what pip trusts by default since pip 24.2) and certifi's
    bundle (what requests trusted, and what a Python without system CAs needs)."""
    context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    import certifi

    context.load_verify_locations(cafile=certifi.where())
