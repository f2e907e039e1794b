"""operation-svc owns the API keys, so it verifies them against its own table."""

from __future__ import annotations

from idp_common.api_keys import api_key_subject, hash_api_key
from idp_common.auth import Principal
from idp_common.db import Database, utcnow
from idp_common.errors import Unauthorized
from operation_svc.api_keys.repository import ApiKeysByHash
from operation_svc.api_keys.service import withdrawal


class LocalApiKeyVerifier:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def verify(self, key: str) -> Principal:
        # Not a transaction: the request may already hold the SQLite writer's turn.
        async with self._db.reader() as connection:
            record = await ApiKeysByHash(connection).by_hash(hash_api_key(key))
            if record is None or await withdrawal(connection, record, utcnow()) is not None:
                raise Unauthorized("Invalid, expired or revoked API key")
        return Principal(
            subject=api_key_subject(record.id),
            tenant=record.tenant,
            roles=frozenset(record.roles),
            groups=frozenset(record.groups),
        )
