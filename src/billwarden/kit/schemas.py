"""The wire conventions every domain follows: camelCase JSON, one page shape for lists, and
times and dates written in ISO 8601."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def whole(value: float) -> int | float:
    """A quantity as JSON shows it: 30, not 30.0, when it is whole."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


# a number that counts things (usage, quotas): whole numbers are written as integers
Quantity = Annotated[float, PlainSerializer(whole, return_type=int | float)]


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """pydantic reads a number as seconds since 1970; the document promises ISO 8601, so a
    number is refused rather than read as a time nobody meant (`to=-1.5` as 1969-12-31)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be written in ISO 8601 (2026-01-31 or 2026-01-31T12:00:00Z)")
    return value


def _within_utc(value: datetime) -> datetime:
    """A time whose offset takes it past the calendar in UTC (0001-01-01T00:00+21:00) cannot
    be compared with stored times: refused rather than failing the query."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("is outside the years 1 to 9999 in UTC") from exc
    return value


# a time or a date as the document describes it: ISO 8601 text, never a number of seconds
IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_within_utc)]
IsoDate = Annotated[date, BeforeValidator(_not_a_number)]


class CamelModel(BaseModel):
    """snake_case in Python, camelCase on the wire; unknown fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")

# both databases take 64-bit offsets; a bound far below that keeps huge values a 400, not a 500
MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int

    @property
    def window(self) -> dict[str, int]:
        """`limit` and `offset` as keyword arguments for a repository's list query."""
        return {"limit": self.limit, "offset": self.offset}


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


Pages = Annotated[PageParams, Depends(page_params)]


class Page(CamelModel, Generic[ItemT]):
    """One page of a list: `items`, the `total` count, and the `limit`/`offset` used."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(
        cls,
        rows: Iterable[RowT],
        total: int,
        pages: PageParams,
        read: Callable[[RowT], ItemT],
    ) -> Page[ItemT]:
        """The page of `rows` (one query's worth), each turned into its wire shape by `read`."""
        return cls(
            items=[read(row) for row in rows], total=total, limit=pages.limit, offset=pages.offset
        )
