"""The repository base every domain's repository builds on (Polar's `RepositoryBase`)."""

from __future__ import annotations

import uuid
from typing import Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.db.base import Base

ModelT = TypeVar("ModelT", bound=Base)


class RepositoryBase(Generic[ModelT]):
    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def select(self) -> Select[ModelT]:
        return select(self.model)

    async def get(self, id: uuid.UUID) -> ModelT | None:
        return await self.session.get(self.model, id)

    async def one_or_none(self, statement: Select[ModelT]) -> ModelT | None:
        result = await self.session.execute(statement)
        return result.scalars().one_or_none()

    async def all(self, statement: Select[ModelT]) -> list[ModelT]:
        result = await self.session.execute(statement)
        return list(result.scalars().all())

    async def add(self, instance: ModelT, *, flush: bool = True) -> ModelT:
        self.session.add(instance)
        if flush:
            await self.session.flush()
        return instance
