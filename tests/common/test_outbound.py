"""Outbound calls refuse internal destinations, however they are spelled."""

from __future__ import annotations

import httpx
import pytest

from idp_common.outbound import OutboundRefused, guarded_client, is_public


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
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public(address)


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
