"""Where the SQS calls take their AWS credentials from: the keys configured
(``SQS_ACCESS_KEY_ID``, ``SQS_SECRET_ACCESS_KEY``: the local server, ElasticMQ), or else
botocore's default chain (environment, web identity as on EKS, instance roles), which is
the only one that needs botocore's session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import NoCredentialsError

if TYPE_CHECKING:
    from aiobotocore.session import AioSession


class Credentials(NamedTuple):
    """A frozen set of credentials (botocore's ``ReadOnlyCredentials`` fields)."""

    access_key: str
    secret_key: str
    token: str | None = None


CredentialSource = Callable[[], Awaitable[Credentials]]


def configured_credentials(access_key: str, secret_key: str) -> CredentialSource:
    credentials = Credentials(access_key, secret_key)

    async def source() -> Credentials:
        return credentials

    return source


def default_chain(session: AioSession) -> CredentialSource:
    """The session's credentials as of each call (the chain refreshes those that expire)."""

    async def source() -> Credentials:
        found = await session.get_credentials()
        if found is None:
            raise NoCredentialsError()
        frozen = await found.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return source
