"""JSON naming a key twice in one object, ``{"template": "a", "template": "b"}``: parsers
keep the last (Python's) or the first, so it means one thing to whatever read it before this
platform (a gateway, a policy check, a reviewer) and another here. A body holding one is
refused (``request_guards``), naming where, and so is an event from another service
(``envelope.decode_event``)."""

from __future__ import annotations

import json
from typing import Any


class _Duplicated(dict[str, Any]):
    """An object whose text named ``key`` more than once."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                self.key = key
                return
            seen.add(key)


def duplicate_key_path(body: str | bytes) -> list[str | int] | None:
    """The path to the first key ``body``'s JSON names twice in one object (its object's
    path, then the key), or None: for JSON without one and for what is not JSON, which the
    route refuses in its own words."""
    duplicated = False

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        built = dict(pairs)
        if len(built) == len(pairs):
            return built
        duplicated = True
        return _Duplicated(pairs)

    try:
        document = json.loads(body, object_pairs_hook=build)
    except (ValueError, RecursionError):
        return None
    return _path_to_duplicate(document) if duplicated else None


def _path_to_duplicate(document: Any) -> list[str | int] | None:
    """Walked without recursion: the document may be as deep as the parser allows."""
    pending: list[tuple[Any, list[str | int]]] = [(document, [])]
    while pending:
        value, path = pending.pop()
        if isinstance(value, _Duplicated):
            return [*path, value.key]
        members = list(value.items() if isinstance(value, dict) else enumerate(value))
        pending.extend(  # reversed, so that they are walked in the order written
            (child, [*path, key])
            for key, child in reversed(members)
            if isinstance(child, dict | list)
        )
    return None
