"""Templates whose secret references alone make a job past what a queue message holds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from operation_svc.models import OperationTemplate, SecretMapping, SecretRef


async def add_with_oversized_secrets(
    session: AsyncSession, templates: Sequence[OperationTemplate]
) -> None:
    """Add ``templates``, each mapping 45 variables to a secret whose key is 500 emoji: a job
    of any of them takes more than 256 KiB before any value."""
    secret = SecretRef(
        tenant="acme", slug="far", provider="env", key="😀" * 500, created_by="alice"
    )
    session.add_all([*templates, secret])
    await session.flush()
    session.add_all(
        SecretMapping(
            tenant="acme",
            template_id=owner.id,
            secret_id=secret.id,
            env_var=f"SECRET_{n}",
            created_by="alice",
        )
        for owner in templates
        for n in range(45)
    )
