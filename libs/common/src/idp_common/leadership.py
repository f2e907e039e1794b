"""One replica at a time: for work that every replica could do but only one should (polling
the broker for the queues' depths)."""

from __future__ import annotations

import logging
import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from idp_common.db import Database

logger = logging.getLogger(__name__)


class Leadership:
    """Whether this process leads ``name``: on PostgreSQL, it holds an advisory lock on a
    connection of its own (released when the process or the connection dies, so another
    replica takes over); on SQLite, whose file one process owns, it always leads."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.key = zlib.crc32(name.encode())
        self._connection: AsyncConnection | None = None

    async def held(self) -> bool:
        if self.db.is_sqlite:
            return True
        try:
            if self._connection is not None:
                await self._connection.execute(text("SELECT 1"))  # the lock lives with it
                return True
            connection = await self.db.engine.connect()
            locked = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
            await connection.commit()
        except Exception:
            logger.warning("leadership check failed; not leading", exc_info=True)
            await self.release()
            return False
        if locked:
            self._connection = connection
        else:
            await connection.close()
        return bool(locked)

    async def release(self) -> None:
        """Let another replica lead. The lock belongs to the database session, which the
        pool would keep: it is unlocked, or the connection thrown away."""
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            await connection.commit()
        except Exception:
            await connection.invalidate()
        await connection.close()
