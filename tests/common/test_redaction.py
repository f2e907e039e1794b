"""Credentials written into an HTTP request (headers, query parameters, a URL's query) are
masked wherever it is shown, in every spelling of their names; an editor's masks sent back
stand for the stored values, at the same place only."""

from __future__ import annotations

import pytest

from idp_common.redaction import MASK, kept_where_masked, mask_secrets, masked_url

CREDENTIAL_HEADERS = [
    "Authorization",
    "authorization",
    "Proxy-Authorization",
    "X-Api-Key",
    "X-API-KEY",
    "x_api_key",
    "Ocp-Apim-Subscription-Key",
    "X-Auth-Token",
    "Cookie",
    "X-Client-Secret",
    "X-Session",
]


@pytest.mark.parametrize("name", CREDENTIAL_HEADERS)
def test_a_credential_header_is_masked_in_every_spelling(name: str) -> None:
    request = {"headers": {name: "literal", "X-Reason": "{{m}}", "Accept": "text/plain"}}
    assert mask_secrets({"http": request}) == {
        "http": {"headers": {name: MASK, "X-Reason": "{{m}}", "Accept": "text/plain"}}
    }


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/x?token=t", "https://h/x?token=***"),
        ("https://h/x?tag={{m}}&api_key=k#top", "https://h/x?tag={{m}}&api_key=***#top"),
        (
            "https://h/x?access_token=a&ACCESS_TOKEN=b",
            "https://h/x?access_token=***&ACCESS_TOKEN=***",
        ),
        ("https://h/x?Api%5FKey=k&apiKey=k&key=k", "https://h/x?Api%5FKey=***&apiKey=***&key=***"),
        ("https://h/x?sig&signature=s&x=%20", "https://h/x?sig&signature=***&x=%20"),
        ("https://h/x?tag=a+b", "https://h/x?tag=a+b"),
        ("https://h/x", "https://h/x"),
    ],
)
def test_a_credential_query_parameter_is_masked_leaving_the_rest_as_written(
    url: str, shown: str
) -> None:
    assert masked_url(url) == shown
    assert mask_secrets({"endpoint_url": url, "url": url}) == {"endpoint_url": shown, "url": shown}


def test_masks_sent_back_keep_the_stored_values_at_their_place_only() -> None:
    stored = {
        "url": "https://h/x?token=t&tag=a",
        "headers": {"Authorization": "Bearer b", "X-Api-Key": "k"},
        "body": {"password": "p", "nested": {"client_secret": "c"}},
    }
    shown = mask_secrets(stored)
    assert kept_where_masked(shown, stored) == stored
    moved = {
        "url": "https://elsewhere/x?tag=***&access_token=***",
        "headers": {"Authorization": "Bearer new", "X-Other-Key": MASK, "X-Reason": MASK},
        "body": {"password": "new", "nested": {"secret": MASK}},
    }
    assert kept_where_masked(moved, stored) == moved
