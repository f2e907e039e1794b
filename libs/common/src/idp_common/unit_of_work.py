"""The unit of work: one transaction's work as domain code writes it.

Domain code adds entities and states what must happen once per transaction; how that is
batched (one INSERT per table, one executemany per statement, one slot refill per template
however many of the transaction's items asked for it) is this module's and ``db``'s."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from contextvars import Context, copy_context
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
_Defaults = list[tuple[str, Callable[[], Any]]]
Step = Callable[[], Coroutine[Any, Any, None]]
_DEFAULTS: dict[type[Any], _Defaults] = {}


def _factory(default: Any) -> Callable[[], Any]:
    """A column default (``ColumnDefault``, or None) as a function of nothing."""
    if default is None:
        return lambda: None
    arg = default.arg
    if default.is_callable:
        return lambda: arg(None)  # SQLAlchemy wraps the function to take an execution context
    return lambda: arg


def _defaults_of(model: type[Any]) -> _Defaults:
    """Each column attribute of ``model`` with the value a new row gets when none is given:
    its Python-side default, or None."""
    if (defaults := _DEFAULTS.get(model)) is None:
        attributes = inspect(model).column_attrs
        defaults = [(a.key, _factory(a.columns[0].default)) for a in attributes]
        _DEFAULTS[model] = defaults
    return defaults


def with_defaults(entity: E) -> E:
    """``entity`` with every column it was not given set to the model's default (None
    where there is none): its id and times are known before it is inserted, and the new
    rows of a table all name the same columns, so the flush inserts them in one statement."""
    given = vars(entity)
    for key, default in _defaults_of(type(entity)):
        if key not in given:
            setattr(entity, key, default())
    return entity


class UnitOfWork:
    """One transaction: ``add`` new entities, ``once_before_commit`` for a step many of the
    transaction's items may ask for (it runs once, in the context of the first that asked).
    The session is there for queries, which live in repositories."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._steps: dict[Hashable, tuple[Step, Context]] = {}

    def add(self, entity: E) -> E:
        self.session.add(with_defaults(entity))
        return entity

    def once_before_commit(self, key: Hashable, step: Step) -> None:
        self._steps.setdefault(key, (step, copy_context()))

    async def run_steps(self) -> None:
        """Run the steps asked for (a step may ask for others); called before the commit."""
        while self._steps:
            key = next(iter(self._steps))
            step, context = self._steps.pop(key)
            await asyncio.create_task(step(), context=context)
