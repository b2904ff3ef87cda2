"""`commons-map notify remind`: return reminders, overdue returns, proposals closing within a day,
agreements due for review; each told once however often the pass runs, in French and English."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from commons_map.governance.models import Agreement
from commons_map.governance.schemas import EffectIn
from commons_map.notify.models import Delivery, Notification
from commons_map.notify.remind import remind
from commons_map.notify.service import KINDS, preferences, text_of
from tests.commons_map.test_governance import T0, garden_circle, m, position, propose
from tests.commons_map.test_governance import _pass as adopt


def _told(db, dedupe: str) -> list[Notification]:
    return list(db.scalars(select(Notification).where(Notification.dedupe == dedupe).order_by(Notification.member_id)))


def test_a_checked_out_tool_is_reminded_a_day_ahead_then_overdue_once_each(db, people):
    from commons_map.reservations import service as reservations
    from tests.commons_map.test_reservations_support import day, new_tool

    tool = new_tool(db, people, name="Tarière à bois")
    r = reservations.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 16))
    reservations.check_out(db, actor=people.steward, reservation_id=r.id, now=r.starts_at)

    assert remind(db, now=r.ends_at - timedelta(hours=30)) is not None
    assert _told(db, f"reservation:{r.id}:reminder") == []  # more than a day ahead: nothing yet
    first = remind(db, now=r.ends_at - timedelta(hours=3))
    again = remind(db, now=r.ends_at - timedelta(hours=2))
    [reminder] = _told(db, f"reservation:{r.id}:reminder")
    assert first.returns >= 1 and again.returns == 0
    assert (reminder.member_id, reminder.kind, reminder.link) == (people.member.id, "return_reminder",
                                                                  "/app/reservations")
    assert text_of(reminder, "fr").startswith("Rappel : Tarière à bois est à rendre le ")
    assert text_of(reminder, "en").startswith("Reminder: Tarière à bois is due back on ")
    assert _told(db, f"reservation:{r.id}:overdue") == []

    late = remind(db, now=r.ends_at + timedelta(hours=1))
    assert remind(db, now=r.ends_at + timedelta(hours=5)).overdue == 0
    [overdue] = _told(db, f"reservation:{r.id}:overdue")
    assert late.overdue >= 1 and overdue.kind == "reservation_overdue"
    assert "devait être rendu le" in text_of(overdue, "fr") and "is not returned yet" in text_of(overdue, "en")
    # The member's default for these kinds is e-mail at once: each reminder queued one e-mail.
    mails = db.scalars(select(Delivery.notification_id).where(Delivery.notification_id.in_([reminder.id, overdue.id])))
    assert sorted(mails) == sorted([reminder.id, overdue.id])

    reservations.check_in(db, actor=people.steward, reservation_id=r.id, now=r.ends_at + timedelta(hours=6))
    remind(db, now=r.ends_at + timedelta(days=2))
    assert len(_told(db, f"reservation:{r.id}:overdue")) == 1  # returned: nothing more


def test_a_proposal_closing_within_a_day_reminds_who_may_still_take_part(db, people):
    circle = garden_circle(db, people, members=("mamadou", "lea", "hugo"))
    p = propose(db, people.steward, participation="circle", circle_id=circle.id, days=3,
                title="Compost à l'entrée du jardin")
    position(db, m(db, "lea"), p, "consent")

    remind(db, now=T0 + timedelta(days=1))
    assert _told(db, f"proposal:{p.id}:closing") == []  # two days left: too early
    first = remind(db, now=p.closes_at - timedelta(hours=20))
    second = remind(db, now=p.closes_at - timedelta(hours=2))
    told = _told(db, f"proposal:{p.id}:closing")
    # The author (mamadou) and who took part (lea) are not reminded; the other circle member is.
    assert [n.member_id for n in told] == [m(db, "hugo").id]
    assert first.closing >= 1 and second.closing == 0
    assert told[0].kind == "proposal_closing" and told[0].link == f"/app/decisions/{p.id}"
    fr, en = text_of(told[0], "fr"), text_of(told[0], "en")
    assert fr.startswith("La proposition « Compost à l'entrée du jardin » se termine le ")
    assert fr.endswith("vous n'y avez pas encore pris part.")
    assert en.startswith("The proposal « Compost à l'entrée du jardin » closes on ")
    assert "2030" in fr and "2030" in en

    remind(db, now=p.closes_at + timedelta(hours=1))  # closed meanwhile (or past): no closing notice
    assert len(_told(db, f"proposal:{p.id}:closing")) == 1


def test_an_agreement_due_for_review_tells_the_coordinators_once_per_review_date(db, people):
    p = adopt(db, people, EffectIn(type="agreement_adopt", value={
        "title": "Charte du four", "text": "On nettoie le four après usage.", "review_on": "2030-07-01"}))
    a = db.scalars(select(Agreement).where(Agreement.adopted_by_id == p.id)).one()
    key = f"agreement:{a.id}:review:2030-07-01"

    remind(db, now=datetime(2030, 6, 1, 8, tzinfo=UTC))
    assert _told(db, key) == []  # a month ahead: too early
    first = remind(db, now=datetime(2030, 6, 20, 8, tzinfo=UTC))
    again = remind(db, now=datetime(2030, 6, 21, 8, tzinfo=UTC))
    told = _told(db, key)
    coordinators = sorted(x.id for x in people.coop.members if x.is_coordinator and x.is_active)
    assert [n.member_id for n in told] == coordinators and people.coordinator.id in coordinators
    assert first.reviews >= len(coordinators) and again.reviews == 0
    n = told[0]
    assert (n.kind, n.code, n.link) == ("agreement_review", "notify.agreement_review", "/app/agreements")
    assert text_of(n, "fr") == "L'accord « Charte du four » est à revoir le 1 juil. 2030."
    assert text_of(n, "en") == "The agreement « Charte du four » is due for review on Jul 1, 2030."

    # A new review date is a new event; once it is past, the notice says so.
    a.review_on = date(2030, 8, 1)
    db.flush()
    remind(db, now=datetime(2030, 8, 3, 8, tzinfo=UTC))
    [late] = [x for x in _told(db, f"agreement:{a.id}:review:2030-08-01") if x.member_id == people.coordinator.id]
    assert late.code == "notify.agreement_review_passed"
    assert text_of(late, "en") == "The agreement « Charte du four » was due for review on Aug 1, 2030 and is not " \
                                  "reviewed yet."
    assert text_of(late, "fr").startswith("L'accord « Charte du four » était à revoir le 1 août 2030")


def test_a_circle_agreement_tells_its_circle(db, people):
    circle = garden_circle(db, people, members=("mamadou", "lea", "hugo"))
    p = propose(db, people.steward, participation="circle", circle_id=circle.id,
                effect=EffectIn(type="agreement_adopt", value={
                    "title": "Rotation des parcelles", "text": "Chaque année.", "review_on": "2030-05-20"}))
    position(db, m(db, "lea"), p, "consent")
    position(db, m(db, "hugo"), p, "consent")
    from commons_map.governance import service as governance

    governance.close(db, actor=None, proposal_id=p.id, now=p.closes_at + timedelta(minutes=1))
    a = db.scalars(select(Agreement).where(Agreement.adopted_by_id == p.id)).one()
    assert a.circle_id == circle.id
    remind(db, now=datetime(2030, 5, 15, 8, tzinfo=UTC))
    told = _told(db, f"agreement:{a.id}:review:2030-05-20")
    assert sorted(n.member_id for n in told) == sorted(m(db, u).id for u in ("mamadou", "lea", "hugo"))


def test_the_new_kinds_are_in_the_preferences_with_their_names(db, people):
    chosen = preferences(db, actor=people.member)["channels"]
    for kind in ("return_reminder", "reservation_overdue", "proposal_closing", "agreement_review",
                 "job_finished", "job_failed"):
        assert kind in KINDS and chosen[kind] == KINDS[kind]
    from commons_map.messages import catalogue

    for kind in KINDS:
        assert catalogue("fr")["notify.kind_" + kind] != catalogue("en")["notify.kind_" + kind]
