"""In a phone's browser (360 px, French and English, axe-core): the harvest form offers the crop
catalogue; a work log's photo from the field shows on the approvals page of its steward."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from commons_map.db import session_scope
from commons_map.demo.load import DEMO_PASSWORD
from commons_map.people.models import Member
from tests.api.test_pages_browser import make_member, new_phone, shot, sign_in, steward_land  # noqa: F401
from tests.conftest import axe_violations


def _jpeg() -> bytes:
    """A real photo in miniature (a green square), as a phone's camera would send it."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (46, 125, 50)).save(out, format="JPEG")
    return out.getvalue()


JPEG = _jpeg()


@pytest.mark.parametrize(("locale", "label", "crop"), [("fr", "Culture", "Tomate"), ("en", "Crop", "Tomato")])
def test_the_harvest_form_offers_the_crop_catalogue(new_phone, make_member, locale, label, crop):  # noqa: F811
    worker = make_member(f"e2e-crops-{locale}", locale=locale)
    page = new_phone("fr-FR" if locale == "fr" else "en-GB").new_page()
    sign_in(page, worker)
    page.goto("/app/harvest/new")
    select_crop = page.get_by_label(label, exact=True)
    assert select_crop.evaluate("e => e.tagName") == "SELECT"
    options = select_crop.locator("option").all_inner_texts()
    assert crop in options and len(options) > 50
    select_crop.select_option(label=crop)
    shot(page, f"20-harvest-crops-{locale}")
    assert axe_violations(page) == []


def test_a_work_logs_photo_shows_on_the_stewards_approvals_page(new_phone, make_member, engine,  # noqa: F811
                                                                live_server):
    from commons_map.fieldforms.service import add_attachment, store_submission
    from commons_map.worklog.schemas import WorkLogIn
    from commons_map.worklog.service import log_work

    worker = make_member("e2e-photo", locale="en")
    land_id, _ = steward_land(engine)
    notes = f"photo du paillage {uuid.uuid4().hex[:6]}"
    with session_scope(engine) as s:
        member = s.scalars(select(Member).where(Member.username == worker)).one()
        log = log_work(s, actor=member, data=WorkLogIn(commons_id=land_id, work_date=date.today() - timedelta(days=1),
                                                         minutes=60, activity="mulching", notes=notes))
        stored = store_submission(s, cooperative_id=member.cooperative_id, member=member, form_id="commons_worklog",
                                  form_version="2026112901", instance_id=f"uuid:{uuid.uuid4()}", deprecated_id=None,
                                  raw=b"<data/>", source="openrosa")
        stored.submission.status, stored.submission.records = "processed", {"kind": "work_log", "ids": [log.id]}
        add_attachment(s, submission=stored.submission, name="paillage.jpg", content_type="image/jpeg", data=JPEG,
                       root=live_server.settings.attachments_dir)
        log_id = log.id
    src = f"/api/v1/attachments/work_log/{log_id}/paillage.jpg"
    # The steward, in French, sees it where they approve the hours.
    steward = new_phone().new_page()
    sign_in(steward, "mamadou", DEMO_PASSWORD)
    steward.goto("/app/approvals")
    img = steward.locator(f"#w{log_id} img")
    assert img.get_attribute("src") == src and "Photo envoyée du terrain" in img.get_attribute("alt")
    got = steward.request.get(src)
    assert got.status == 200 and got.body() == JPEG
    img.scroll_into_view_if_needed()
    steward.wait_for_function("e => e.complete && e.naturalWidth === 64", arg=img.element_handle())  # it shows
    shot(steward, "21-approvals-photo-fr")
    assert axe_violations(steward) == []
    # The worker, in English, on their own list.
    phone = new_phone("en-GB").new_page()
    sign_in(phone, worker)
    phone.goto("/app/work")
    img = phone.locator(f'img[src="{src}"]')
    assert "Photo sent from the field" in img.get_attribute("alt")
    shot(phone, "22-my-work-photo-en")
    assert axe_violations(phone) == []
    stranger = new_phone().new_page()
    sign_in(stranger, make_member("e2e-stranger"))
    assert stranger.request.get(f"/api/v1/attachments/work_log/{log_id}/paillage.jpg").status == 404
