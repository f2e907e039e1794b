"""Outbound HTTP that cannot be pointed at the inside (SSRF).

Every connection, including each redirect's, resolves its host once, refuses it if any
address is loopback, private, link-local (the metadata address), CGNAT, unique-local,
multicast, reserved, an IETF protocol assignment or an IPv6 form embedding any of them,
and then connects to that very checked address (no second lookup to rebind). TLS still
verifies, and sends SNI for, the original host name. Hosts in ``allowed_hosts`` skip the
address check (a deliberate allowlist).
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import logging
import re
import socket
import unicodedata
import urllib.parse
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from idp_common.tls import client_tls

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
# The longest a data source may take (its timeout_seconds): callers of datasource-svc wait
# longer than that.
MAX_SOURCE_TIMEOUT_SECONDS = 30


class OutboundRefused(httpx.TransportError):
    """The destination is not one this platform may call."""


# Ranges some Python versions call global (CVE-2024-4032, fixed in 3.11.10 and 3.12.4) or
# that embed another address in a way no property here reads: IETF protocol assignments,
# IPv4-compatible and SIIT-translated IPv6, local-use NAT64, deprecated site-local,
# discard-only.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.0.0/24",
        "::/96",
        "::ffff:0:0:0/96",
        "64:ff9b:1::/48",
        "fec0::/10",
        "100::/64",
        "2001::/23",
    )
)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip in network for network in _NOT_PUBLIC):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public(str(embedded))
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 carries an IPv4 address
            return is_public(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return ip.is_global and not ip.is_multicast


# How the JSON Schema documents a URL that ``unusable_url`` checks: http(s), a host, no
# space (pydantic does not check it again: ``unusable_url`` names the rule a URL breaks). No
# "format": "uri", which an HTTP template's URL with a placeholder (``/v1/{{name}}``) is not.
HTTP_URL_SCHEMA = {"pattern": r"^[Hh][Tt][Tt][Pp]([Ss])?://[^/?#\s]+\S*$"}


def _unseen_character(url: str) -> str | None:
    """The first space, control or format character (a bidi override, a zero-width space)
    in ``url``, or None: ``urlsplit`` drops some of them and the HTTP client encodes others
    into the host or the path, so the URL checked would not be the URL called."""
    return next((c for c in url if unicodedata.category(c)[0] in "CZ"), None)


def unusable_url(url: str) -> str | None:
    """Why ``url`` cannot be called (it completes "the URL …"), or None: not absolute http
    or https, a space or control character anywhere, a port that is no number from 1 to
    65535, or a host the HTTP client refuses (a malformed IDNA name such as ``xn--``) or
    would send percent-encoded, which would otherwise fail only at the call."""
    if (unseen := _unseen_character(url)) is not None:
        return f"must not contain {unseen!r}: percent-encode spaces and control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http or https URL"
    if port == 0:
        return "has port 0, which nothing listens on"
    try:  # a request, not only a URL: its Host header is where the host name is encoded
        host = httpx.Request("GET", f"{parts.scheme}://{parts.netloc}/").url.host
    except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors
        return f"names a host no HTTP client can call: {exc}"
    if "%" in host:
        return f"names a host no HTTP client can call: {parts.hostname!r}"
    return None


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
# Set by the client itself; Host would send the call to another site behind the address.
UNSETTABLE_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
HEADER_VALUE_RULE = "must be visible ASCII characters, spaces and tabs"


def settable_header_name(name: str) -> bool:
    return bool(_HEADER_NAME.fullmatch(name)) and name.lower() not in UNSETTABLE_HEADERS


def header_named_again(names: Iterable[str], set_already: Iterable[str] = ()) -> str | None:
    """The first of ``names`` that names a header again (header names ignore case), counting
    those ``set_already`` (by a credential); None when each is sent once. Sent twice, a
    receiver reads either copy, or refuses both (this platform's services do)."""
    seen = {name.lower() for name in set_already}
    for name in names:
        if name.lower() in seen:
            return name
        seen.add(name.lower())
    return None


def sendable_header_value(value: str) -> bool:
    """Visible ASCII, spaces and tabs: a control character (CR, LF) would end the header,
    and the client encodes nothing else."""
    return bool(_HEADER_VALUE.fullmatch(value))


def internal_literal_host(url: str) -> str | None:
    """The host the client calls (as the outbound allowlists name it) when it is written as
    an address that is not public (in any spelling the resolver accepts: ``127.1``,
    ``0x7f.0.0.1``, ``2130706433``, IPv6, IPv4-mapped) or as ``localhost``; other names are
    checked when they are resolved, at every call. Read as the client reads it: to
    ``urlsplit``, ``127。0。0。1`` (ideographic full stops) is a name; the client calls
    ``127.0.0.1``."""
    try:
        called = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError):  # no URL at all: refused as such where it is checked
        return None
    host = called.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return called
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            address = socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None if is_public(address) else called


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allowed_hosts: Iterable[str], allowlist_setting: str) -> None:
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.allowlist_setting = allowlist_setting
        self._inner = httpcore.AnyIOBackend()

    async def checked_address(self, host: str, port: int) -> str:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:  # socket.gaierror: the name does not resolve
            infos = []
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise OutboundRefused(f"{host} does not resolve")
        if host.lower() not in self.allowed_hosts:
            refused = [address for address in addresses if not is_public(address)]
            if refused:
                # The address goes to the operators' log only: the refusal reaches whoever
                # named the host (a tenant's admin), who would map the internal network.
                logger.warning("outbound call refused: %s resolves to %s", host, refused[0])
                raise OutboundRefused(
                    f"{host} resolves to a non-public address; "
                    f"add {host} to {self.allowlist_setting} if this is intended"
                )
        return addresses[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.checked_address(host, port)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are never reachable from outbound calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, allowed_hosts: Iterable[str], allowlist_setting: str) -> None:
        super().__init__(retries=0, verify=client_tls())
        # httpx 0.28 (pinned) cannot take a network backend, so its pool is rebuilt with one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=client_tls(),
            network_backend=GuardedNetworkBackend(allowed_hosts, allowlist_setting),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise OutboundRefused(f"only http and https are allowed, not {request.url.scheme}")
        return await super().handle_async_request(request)


# What a request keeps when a redirect sends it to another origin, besides the client's own
# headers: the destination and the body's framing.
_HEADERS_FOR_ANY_ORIGIN = frozenset({"host", "content-type", "content-length", "transfer-encoding"})


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


class _GuardedClient(httpx.AsyncClient):
    def _redirect_headers(
        self, request: httpx.Request, url: httpx.URL, method: str
    ) -> httpx.Headers:
        """Any header the caller set may carry a credential (``X-Api-Key``), where httpx
        drops only ``Authorization``: none follows a redirect to another origin."""
        headers = super()._redirect_headers(request, url, method)
        if _origin(url) == _origin(request.url):
            return headers
        kept = _HEADERS_FOR_ANY_ORIGIN | {name.lower() for name in self.headers}
        return httpx.Headers([(n, v) for n, v in headers.multi_items() if n.lower() in kept])


def keeping_no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps none, for a client that makes many calls (every tenant's
    webhook deliveries): a cookie one answer sets (``Domain=`` a parent domain, too) would
    otherwise go with the calls that follow to its hosts, another tenant's among them."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def guarded_client(
    allowed_hosts: Iterable[str], timeout: float, allowlist_setting: str
) -> httpx.AsyncClient:
    """A client for one outbound call: guarded, redirects re-checked, no cookie jar kept,
    no header of the caller's sent to another origin. ``allowlist_setting`` names the
    variable that holds ``allowed_hosts``, for refusals."""
    return _GuardedClient(
        transport=GuardedTransport(allowed_hosts, allowlist_setting),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
    )
