"""Resolving a source's options for the dependent values a form has so far."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from datasource_svc.models import DataSource
from datasource_svc.sources.cache import OptionsCache
from datasource_svc.sources.fetch import Fetched, UpstreamFailed, fetch_options, placeholders
from datasource_svc.sources.schemas import ResolveOut
from idp_common.secret_values import SecretResolver

CACHE = Counter(
    "idp_options_lookups_total",
    "Option lookups of a data source (its slug), by how they were answered: hit (cached), "
    "miss (asked upstream), shared (joined another caller's call), stale (last good, served "
    "because the upstream failed), failed.",
    ["source", "result"],
)
# What decides the options a source gives: part of every cache key, so options cached (fresh
# or last-good) for an earlier definition of the source are never served for a changed one.
DEFINITION_FIELDS = (
    "endpoint_url",
    "method",
    "headers",
    "query",
    "body",
    "auth_config",
    "items_path",
    "value_expr",
    "label_expr",
    "max_options",
)


def used_values(source: DataSource, values: Mapping[str, Any]) -> dict[str, str]:
    """Only the values the source uses, as strings: they form the cache key, and are what
    its upstream is sent (``false``, not ``False``; ``0``, not nothing)."""
    return {
        name: ""
        if values.get(name) is None
        else str(values[name]).lower()
        if isinstance(values.get(name), bool)
        else str(values[name])
        for name in sorted(placeholders(source))
    }


class OptionsResolver:
    def __init__(
        self,
        cache: OptionsCache,
        secrets: SecretResolver,
        *,
        allowed_hosts: list[str],
        response_cap_bytes: int,
    ) -> None:
        self.cache = cache
        self.secrets = secrets
        self.allowed_hosts = allowed_hosts
        self.response_cap_bytes = response_cap_bytes

    async def fetch(self, source: DataSource, values: Mapping[str, str]) -> Fetched:
        """Ask the upstream now, under this service's outbound rules (no cache)."""
        return await fetch_options(
            source,
            values,
            secrets=self.secrets,
            allowed_hosts=self.allowed_hosts,
            response_cap_bytes=self.response_cap_bytes,
        )

    async def resolve(self, source: DataSource, values: Mapping[str, Any]) -> ResolveOut:
        now = datetime.now(UTC)
        if source.source_type == "static":
            return ResolveOut.model_validate(
                {
                    "options": source.options or [],
                    "cached": True,
                    "fetched_at": source.updated_at,
                    "stale": False,
                }
            )
        used = used_values(source, values)
        definition = {name: getattr(source, name) for name in DEFINITION_FIELDS}
        keyed = json.dumps({"definition": definition, "values": used}, sort_keys=True)
        digest = hashlib.sha256(keyed.encode()).hexdigest()[:32]
        # The generation (bumped by ``refresh``) keys the last-good copy too: options from
        # before a refresh are not served even when the upstream fails.
        key = f"{source.id}:{source.cache_generation}:{digest}"
        if (hit := await self.cache.fresh(key)) is not None:
            CACHE.labels(source.slug, "hit").inc()
            return ResolveOut.model_validate(hit | {"cached": True, "stale": False})

        async def fill() -> dict[str, Any]:
            if (hit := await self.cache.fresh(key)) is not None:  # another replica filled it
                return hit
            fetched = await self.fetch(source, used)
            payload = {"options": fetched.options, "fetched_at": now.isoformat()}
            await self.cache.remember(key, payload, source.ttl_seconds)
            return payload

        try:
            payload, joined = await self.cache.coalesced(key, fill)
        except UpstreamFailed:
            last_good = await self.cache.last_good(key)
            if last_good is None:
                CACHE.labels(source.slug, "failed").inc()
                raise
            CACHE.labels(source.slug, "stale").inc()
            return ResolveOut.model_validate(last_good | {"cached": True, "stale": True})
        CACHE.labels(source.slug, "shared" if joined else "miss").inc()
        return ResolveOut.model_validate(payload | {"cached": joined, "stale": False})
