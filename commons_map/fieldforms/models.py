"""ORM models of field submissions, their attachments, and the members' field tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base, Timestamped

STATUSES = ("incomplete", "received", "processed", "rejected", "superseded")
SOURCES = ("openrosa", "central_csv", "kobo_csv", "geojson")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class FieldToken(Timestamped, Base):
    """A secret a member's phone puts in the server URL (``/openrosa/key/{token}``); stored hashed."""

    __tablename__ = "field_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: the token is 32 random bytes, so a fast hash is enough and lookups are exact.
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    label: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Submission(Base):
    """One filled form as received (raw bytes and their SHA-256), and what it became."""

    __tablename__ = "field_submissions"
    __table_args__ = (
        # The identity of a submission: resends (even concurrent ones) cannot make two rows.
        UniqueConstraint("form_id", "instance_id", name="uq_field_submissions_instance"),
        CheckConstraint(f"status IN {_in(STATUSES)}", name="status"),
        CheckConstraint(f"source IN {_in(SOURCES)}", name="source"),
        CheckConstraint("instance_id <> ''", name="instance_id"),
        # One edit per version: two concurrent edits of the same submission cannot both win.
        Index(
            "uq_field_submissions_deprecated",
            "form_id",
            "deprecated_id",
            unique=True,
            postgresql_where=text("deprecated_id IS NOT NULL"),
        ),
        Index("ix_field_submissions_coop_form", "cooperative_id", "form_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    form_id: Mapped[str] = mapped_column(Text)
    form_version: Mapped[str] = mapped_column(Text, default="", server_default="")
    instance_id: Mapped[str] = mapped_column(Text)
    deprecated_id: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="openrosa", server_default="openrosa")
    # The bytes as received (XML for OpenRosa; canonical JSON of the row for exports).
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="received", server_default="received")
    # What the submission became: {"kind": "work_log", "ids": [..]} and so on.
    records: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    problem: Mapped[str | None] = mapped_column(Text)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("field_submissions.id"))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    attachments: Mapped[list[Attachment]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Attachment.id"
    )


class Attachment(Base):
    """A file sent with a submission, stored on disk by content (``sha256``), named by basename."""

    __tablename__ = "field_submission_attachments"
    __table_args__ = (UniqueConstraint("submission_id", "name", name="uq_field_attachments_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("field_submissions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

