"""What response schemas share: they are read straight from ORM rows (`from_attributes`), with datetimes in UTC.

Naming convention for every schema in `api/*/schemas.py`: a request body ends in `In`, a response in `Public`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class PublicModel(BaseModel):
    """A response built with `Model.model_validate(row)`: no field-by-field copies of ORM rows."""

    model_config = ConfigDict(from_attributes=True)
