"""What the API says of field-form files."""

from __future__ import annotations

from pydantic import BaseModel


class AttachmentOut(BaseModel):
    """A file (photo) sent with the field form that made a record, and where to fetch it."""

    name: str
    content_type: str
    size: int
    url: str
