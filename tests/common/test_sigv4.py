"""``JsonPostSigner`` signs as botocore's ``SigV4Auth`` does, for every request shape
``SQSWire`` sends: any endpoint form, with or without a session token, across days and
credential rotations (its cached signing key must follow both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore import auth
from botocore.awsrequest import AWSRequest

from idp_common.messaging.aws_credentials import Credentials
from idp_common.messaging.sigv4 import CONTENT_TYPE, JsonPostSigner

NOW = datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC)
BODY = b'{"QueueUrl": "http://127.0.0.1:9324/000000000000/jobs", "MaxNumberOfMessages": 10}'


def botocore_headers(
    url: str,
    region: str,
    credentials: Credentials,
    target: str,
    body: bytes,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    monkeypatch.setattr(auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": target, "User-Agent": "ua"},
    )
    auth.SigV4Auth(credentials, "sqs", region).add_auth(request)
    return {name: value for name, value in request.headers.items() if name != "User-Agent"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9324/",
        "http://LOCALHOST:9324/",
        "http://localhost:80/",
        "https://sqs.eu-west-1.amazonaws.com/",
        "https://sqs.eu-west-1.amazonaws.com:443/",
        "https://sqs.eu-west-1.amazonaws.com:8443/",
        "http://[::1]:9324/",
        "http://proxy.internal/sqs/a b/",
        "http://proxy.internal/sqs/./a/../b//c/",
        "http://proxy.internal/..//",
        "http://proxy.internal",
        "HTTP://[::1]/",
        "https://[2001:DB8::1]:443/",
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE  with  spaces==", ""])
def test_the_signature_is_botocores(
    url: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token)
    signer = JsonPostSigner(url, "eu-west-1", "sqs")
    for target, body in [("AmazonSQS.ReceiveMessage", BODY), ("AmazonSQS.SendMessageBatch", b"")]:
        ours = signer.headers(credentials, target, body, NOW)
        expected = botocore_headers(url, "eu-west-1", credentials, target, body, NOW, monkeypatch)
        assert ours == expected


def test_the_signing_key_follows_the_day_and_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "https://sqs.us-east-1.amazonaws.com/"
    signer = JsonPostSigner(url, "us-east-1", "sqs")
    moments = [NOW, NOW + timedelta(seconds=1), NOW + timedelta(days=1), NOW]
    rotated = [Credentials("AKID1", "one", None), Credentials("AKID2", "two", None)]
    for credentials in rotated:
        for now in moments:
            ours = signer.headers(credentials, "AmazonSQS.DeleteMessageBatch", BODY, now)
            expected = botocore_headers(
                url,
                "us-east-1",
                credentials,
                "AmazonSQS.DeleteMessageBatch",
                BODY,
                now,
                monkeypatch,
            )
            assert ours == expected


def test_a_time_given_in_another_zone_is_signed_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:9324/"
    credentials = Credentials("AKID", "secret", None)
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    ours = JsonPostSigner(url, "eu-west-1", "sqs").headers(credentials, "t", BODY, local)
    assert ours == botocore_headers(url, "eu-west-1", credentials, "t", BODY, NOW, monkeypatch)
