"""Each attack has a test, and the server keeps serving after it."""

from __future__ import annotations

import base64

import defusedxml.ElementTree as ET
import httpx
import pytest
from sqlalchemy import func, select

from commons_map.errors import ValidationFailed
from commons_map.fieldforms.models import Submission
from commons_map.fieldforms.service import issue_token
from ingest.safety import Limits, parse_xml
from tests.ingest.conftest import OR, files, new_iid

NS = {"r": "http://openrosa.org/http/response"}


@pytest.fixture
def token(db, people):
    secret, _ = issue_token(db, actor=people.member, member=people.member)
    return secret


def message(resp) -> str:
    return ET.fromstring(resp.content).find("r:message", NS).text


def count(db) -> int:
    return db.scalar(select(func.count()).select_from(Submission))


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_entities_are_refused_and_the_server_keeps_serving(orclient, db, token, name):
    before = count(db)
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files((OR / name).read_bytes()))
    assert resp.status_code == 422
    assert "DTD or entities" in message(resp)
    assert count(db) == before
    assert orclient.get(f"/openrosa/key/{token}/formList").status_code == 200


def test_parse_xml_refuses_dtd_and_entities_directly():
    for name in ("billion_laughs.xml", "external_entity.xml"):
        with pytest.raises(ValidationFailed, match="DTD or entities"):
            parse_xml((OR / name).read_bytes())
    with pytest.raises(ValidationFailed, match="Not well-formed XML"):
        parse_xml(b"<data><unclosed></data>")


def test_oversize_xml_is_refused_before_parsing(orclient, db, token):
    big = b'<data id="commons_worklog"><notes>' + b"x" * (4 * 1024 * 1024 + 10) + b"</notes></data>"
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(big))
    assert resp.status_code == 422 and "at most" in message(resp)
    with pytest.raises(ValidationFailed, match="at most 100 are accepted"):
        parse_xml(b"<a>" + b"x" * 200 + b"</a>", Limits(xml_bytes=100))


def test_too_many_parts_are_refused(orclient, db, token):
    body = b'<data id="commons_worklog"><meta><instanceID>' + new_iid().encode() + b"</instanceID></meta></data>"
    extra = [(f"p{i}.jpg", b"\xff\xd8", "image/jpeg") for i in range(60)]
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body, *extra))
    assert resp.status_code == 422 and "Too many files" in message(resp)
    assert orclient.head(f"/openrosa/key/{token}/submission").status_code == 204


def test_oversize_request_is_refused_by_its_length(orclient, token):
    resp = orclient.post(f"/openrosa/key/{token}/submission", content=b"x" * 10,
                         headers={"Content-Type": "multipart/form-data; boundary=abc",
                                  "Content-Length": str(200 * 1024 * 1024)})
    assert resp.status_code == 413 and "at most" in message(resp)


def test_oversize_attachment_is_refused(orclient, db, token, monkeypatch):
    import ingest.openrosa as receiving
    from ingest import safety

    monkeypatch.setattr(receiving, "LIMITS", Limits(attachment_bytes=1000))
    iid = new_iid()
    body = (f'<data id="commons_worklog"><photo>p.jpg</photo><meta><instanceID>{iid}</instanceID></meta></data>'
            .encode())
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body, ("p.jpg", b"\xff" * 2000, "image/jpeg")))
    assert resp.status_code == 422 and "at most 1000" in message(resp)
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0
    del safety


def test_billion_laughs_against_the_live_server(live_server):
    """A real server, real sockets: the attack is refused and the next request is served."""
    from commons_map.demo.load import DEMO_PASSWORD

    auth = {"Authorization": "Basic " + base64.b64encode(f"lucas:{DEMO_PASSWORD}".encode()).decode()}
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        resp = client.post("/openrosa/submission", headers=auth,
                           files={"xml_submission_file": ("x.xml", (OR / "billion_laughs.xml").read_bytes(),
                                                          "text/xml")})
        assert resp.status_code == 422
        assert resp.headers["X-OpenRosa-Version"] == "1.0"
        ok = client.head("/openrosa/submission", headers=auth)
        assert ok.status_code == 204
        assert client.get("/openrosa/formList", headers=auth).status_code == 200
