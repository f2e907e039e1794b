"""Outbound calls refuse internal destinations, however they are spelled."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from idp_common.outbound import (
    OutboundRefused,
    guarded_client,
    internal_literal_host,
    is_public,
    unusable_url,
)
from idp_common.tls import client_tls


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.1.1",
        "0.0.0.0",
        "::1",
        "fd12::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "224.0.0.1",
        # Called global by Python before 3.11.10 (CVE-2024-4032), or embedding 127.0.0.1
        "192.0.0.8",
        "192.0.0.170",
        "::127.0.0.1",
        "::ffff:0:7f00:1",
        "64:ff9b:1::7f00:1",
        "fec0::1",
        "100::1",
        "2001:2::1",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1"),
        ("http://0x7f.1/", "0x7f.1"),
        ("http://LocalHost./x", "localhost."),
        # Names to urlsplit, which saved them: the client calls 127.0.0.1 (refused then).
        ("http://127\u30020\u30020\u30021/", "127.0.0.1"),
        ("http://127\uff0e0\uff0e0\uff0e1/", "127.0.0.1"),
        ("http://169\uff61254\uff61169\uff61254/latest/", "169.254.169.254"),
        # The host the allowlists are matched against at the call, its dot kept.
        ("http://10.0.0.1./x", "10.0.0.1."),
    ],
)
def test_an_internal_host_is_named_as_the_client_calls_it(url: str, host: str) -> None:
    assert internal_literal_host(url) == host


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433:9/",
    ],
)
async def test_the_guarded_client_refuses_before_connecting(url: str) -> None:
    async with guarded_client([], 2, "TEST_ALLOWED_HOSTS") as client:
        with pytest.raises(OutboundRefused):
            await client.get(url)


async def test_non_http_schemes_are_refused() -> None:
    async with guarded_client([], 2, "TEST_ALLOWED_HOSTS") as client:
        with pytest.raises((OutboundRefused, httpx.UnsupportedProtocol)):
            await client.get("file:///etc/passwd")


async def test_a_guarded_client_verifies_tls_with_the_processs_one_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One per call (a data source fetch, an HTTP template run) once read the CA bundle
    twice, tens of ms of CPU each."""
    context = client_tls()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname

    def no_context_of_its_own(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("a client made a TLS context of its own")

    monkeypatch.setattr(ssl, "create_default_context", no_context_of_its_own)
    async with guarded_client([], 2, "TEST_ALLOWED_HOSTS"):
        pass


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "absolute http or https"),
        ("http:///path", "absolute http or https"),
        ("example.com/x", "absolute http or https"),
        ("http://example.com:99999/", "Port out of range"),
        ("http://example.com:80a/", "Port could not be cast"),
        ("http://example.com:-1/", "Port could not be cast"),
        ("http://example.com:0/", "port 0"),
        ("http://[::1/", "Invalid IPv6 URL"),
        ("http://xn--/", "no HTTP client can call"),
        ("http://xn--zz-zzz/", "no HTTP client can call"),
        ("http://\u2100.com/", "NFKC"),
        # The client would call another URL than the one checked: a relative one (the
        # space percent-encoded before the scheme), a host with %20 in it, a newline
        # urlsplit drops but the client refuses, bidi and zero-width characters.
        (" http://example.com/", "must not contain ' '"),
        ("http://example.com /", "must not contain ' '"),
        ("http://exa mple.com/", "must not contain ' '"),
        ("http://example.com/a b", "must not contain ' '"),
        ("\thttp://example.com/", "must not contain '\\t'"),
        ("http://example.com/\n", "must not contain '\\n'"),
        ("http://exa\rmple.com/", "must not contain '\\r'"),
        ("http://example.com/\x00", "must not contain '\\x00'"),
        ("http://example.com/\x7f", "must not contain '\\x7f'"),
        ("http://example.com/\u00a0", "must not contain '\\xa0'"),
        ("http://ex\u200bample.com/", "must not contain '\\u200b'"),
        ("http://example.com/\u202egnp.exe", "must not contain '\\u202e'"),
        ("http://exa%20mple.com/", "no HTTP client can call: 'exa%20mple.com'"),
        ("http://[fe80::1%25eth0]/", "no HTTP client can call"),
    ],
)
def test_a_url_no_call_could_use_is_named_unusable(url: str, why: str) -> None:
    """At save time, not at the first call: those answered 500 when a data source was
    tried, or made a template no run of which could ever call anything."""
    unusable = unusable_url(url)
    assert unusable is not None
    assert why in unusable, unusable


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://example.com:65535/path?q={{x}}",
        "https://xn--r8jz45g.jp/",
        "https://\u4f8b\u3048.jp/",
        "http://[2001:db8::1]:8080/",
        "https://user@example.com/",
        "HTTPS://EXAMPLE.COM/",
        "https://example.com/a%20b?q=%0A#f",
        "https://b\u00fccher.example/stra\u00dfe?q=\u00e4",
    ],
)
def test_a_url_a_call_can_use_is_not(url: str) -> None:
    assert unusable_url(url) is None


class _Recorder(BaseHTTPRequestHandler):
    """``/hop?to=URL`` redirects there; any other path answers with the headers it got."""

    def do_GET(self) -> None:
        target = parse_qs(urlsplit(self.path).query).get("to")
        self.send_response(302 if target else 200)
        if target:
            self.send_header("Location", target[0])
        body = json.dumps({name.lower(): value for name, value in self.headers.items()})
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def two_origins() -> Iterator[tuple[str, str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tuple(f"http://127.0.0.1:{server.server_address[1]}" for server in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


CREDENTIALS = {
    "X-Api-Key": "vendor-api-key-1234",
    "Authorization": "Bearer t0ken",
    "X-Custom-Token": "abc",
    "Accept": "application/json",
}


@pytest.mark.parametrize("hop", ["/hop?to={b}/collect", "/hop?to=http://localhost:{port}/"])
async def test_no_header_of_the_callers_follows_a_redirect_to_another_origin(
    two_origins: tuple[str, str], hop: str
) -> None:
    a, b = two_origins
    target = hop.format(b=b, port=urlsplit(a).port)  # another port, or another host
    async with guarded_client(["127.0.0.1", "localhost"], 5, "TEST_ALLOWED_HOSTS") as client:
        received = (await client.get(f"{a}{target}", headers=CREDENTIALS)).json()
    assert not {"x-api-key", "authorization", "x-custom-token"} & set(received)
    assert received["accept"] == "application/json"  # the client's own header, kept
    assert received["user-agent"].startswith("python-httpx")


async def test_a_redirect_within_the_origin_keeps_the_callers_headers(
    two_origins: tuple[str, str],
) -> None:
    a, _ = two_origins
    async with guarded_client(["127.0.0.1"], 5, "TEST_ALLOWED_HOSTS") as client:
        received = (await client.get(f"{a}/hop?to={a}/collect", headers=CREDENTIALS)).json()
    assert received["x-api-key"] == "vendor-api-key-1234"
    assert received["authorization"] == "Bearer t0ken"
