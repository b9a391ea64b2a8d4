"""Billing subjects: whom customers, subscriptions, entitlements and usage belong to.

A subject is a type and an id, stored as two columns: `user 42` and `organization 42` are
different subjects. From an end-user token it is the organization when the token names one, else
the user; project-API-key routes name it in the request (`subjectType`, `subjectId`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SUBJECT_ID_MAX_LENGTH = 255
# ids the tenant app gives its users and organizations: printable, no spaces at the ends
SUBJECT_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,255}$"


class SubjectType(StrEnum):
    USER = "user"
    ORGANIZATION = "organization"


@dataclass(frozen=True)
class Subject:
    type: SubjectType
    id: str
    # the email the tenant app knows for it (an end-user token's `email` claim), when known
    email: str | None = None

    @property
    def key(self) -> tuple[SubjectType, str]:
        return (self.type, self.id)

    def __str__(self) -> str:
        return f"{self.type.value} {self.id}"
