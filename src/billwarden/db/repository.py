"""The repository base every domain's repository builds on (Polar's `RepositoryBase`)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Generic, TypeVar

from sqlalchemy import Executable, Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.db.base import Base

ModelT = TypeVar("ModelT", bound=Base)
logger = logging.getLogger("billwarden.db")


class RepositoryBase(Generic[ModelT]):
    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def select(self) -> Select[ModelT]:
        return select(self.model)

    async def get(self, id: uuid.UUID) -> ModelT | None:
        return await self.session.get(self.model, id)

    async def one_or_none(self, statement: Select[ModelT], *, fresh: bool = False) -> ModelT | None:
        """`fresh`: refresh rows this session loaded before (what a lock just taken waited
        for must be seen, not the objects read before it); their unflushed changes are lost."""
        if fresh:
            statement = statement.execution_options(populate_existing=True)
        result = await self.session.execute(statement)
        return result.scalars().one_or_none()

    async def all(self, statement: Select[ModelT], *, fresh: bool = False) -> list[ModelT]:
        if fresh:
            statement = statement.execution_options(populate_existing=True)
        result = await self.session.execute(statement)
        return list(result.scalars().all())

    async def best_effort(self, statement: Executable) -> bool:
        """Run a bookkeeping write (a last-used time) that must never fail the request: in a
        savepoint, giving up when the database is busy (SQLite's one writer is elsewhere).
        Whether it was written."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(statement)
        except OperationalError:
            logger.debug("skipped a bookkeeping write: the database is busy")
            return False
        return True

    async def insert_ignoring_conflict(
        self, values: dict[str, Any], conflict_columns: list[str]
    ) -> bool:
        """Insert a row unless one with the same `conflict_columns` (a unique constraint) is
        there; whether it was inserted. One statement, so concurrent callers insert it once."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Any = self.model.__table__
        statement = (
            insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=conflict_columns)
            .returning(table.c.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def add(self, instance: ModelT, *, flush: bool = True) -> ModelT:
        self.session.add(instance)
        if flush:
            await self.session.flush()
        return instance
