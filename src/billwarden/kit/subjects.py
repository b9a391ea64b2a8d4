"""The subject named in a request body or path, and the caller's right to name it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from billwarden.core.subjects import SUBJECT_ID_PATTERN, SubjectType

SubjectId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=SUBJECT_ID_PATTERN)
]
SubjectTypeField = Annotated[
    SubjectType,
    Field(description="`user` (default) or `organization`; with a project API key only."),
]
SubjectIdField = Annotated[
    SubjectId | None,
    Field(
        description="Whom the request is for; required with a project API key, ignored "
        "(or equal to the token's) with an end-user token."
    ),
]
