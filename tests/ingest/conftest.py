"""Helpers for the ingest tests: an app whose attachments go to a temporary folder, field tokens,
and submissions built from the XML templates in tests/fixtures/openrosa."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.register.models import Commons

FIX = Path(__file__).resolve().parent.parent / "fixtures"
OR = FIX / "openrosa"


@pytest.fixture
def attachments(tmp_path: Path) -> Path:
    """Where this test's attachments are kept."""
    d = tmp_path / "attachments"
    d.mkdir()
    return d


@pytest.fixture
def orclient(settings, engine, db: Session, attachments: Path) -> Iterator[TestClient]:
    """A client of an app whose requests run in the test's transaction, attachments in tmp."""
    from api.deps import get_session
    from api.main import create_app

    application = create_app(settings.model_copy(update={"attachments_dir": attachments}), engine=engine)

    def _session() -> Iterator[Session]:
        yield db
        db.flush()

    application.dependency_overrides[get_session] = _session
    with TestClient(application) as c:
        yield c


def commons_id(db: Session, external_id: str) -> int:
    """The id of a demo commons by its external id."""
    return db.scalars(select(Commons.id).where(Commons.external_id == external_id)).one()


def new_iid() -> str:
    """A fresh instanceID as Collect makes them."""
    return f"uuid:{uuid.uuid4()}"


def xml(template: str, **subs: object) -> bytes:
    """A submission from a template in tests/fixtures/openrosa, with @NAME@ placeholders filled."""
    text = (OR / template).read_text(encoding="utf-8")
    defaults = {"VERSION": "2026112701", "DATE": date.today().isoformat(), "DEPRECATED": "", "PHOTO": ""}
    for key, value in {**defaults, **{k.upper(): v for k, v in subs.items()}}.items():
        text = text.replace(f"@{key}@", str(value))
    if "deprecated" in subs and subs["deprecated"]:
        text = text.replace(f"{subs['deprecated']}", f"{subs['deprecated']}")
    return text.encode("utf-8")


def files(body: bytes, *extra: tuple[str, bytes, str], incomplete: bool = False) -> dict:
    """The multipart parts of a submission POST (and the *isIncomplete* field)."""
    parts = [("xml_submission_file", ("xml_submission_file.xml", body, "text/xml"))]
    parts += [(name, (name, data, ctype)) for name, data, ctype in extra]
    return {"files": parts, "data": {"*isIncomplete*": "yes"} if incomplete else {}}
