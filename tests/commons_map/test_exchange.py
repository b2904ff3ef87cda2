"""The exchange network's rules against the real database: posts, search, exchanges, payment, solidarity."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from commons_map.demo.load import ORIGIN, offset
from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.exchange import service
from commons_map.exchange.models import Exchange, ExchangeHistory, Post
from commons_map.exchange.schemas import PostIn, PostPatch
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.people.models import Member
from commons_map.register.service import APPROXIMATE_GRID_DEG


def _member(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def _post(db, author: Member, **kw) -> Post:
    data = {"kind": "offer", "title": "Réparation de vélos", "description": "Freins, crevaisons, dérailleurs.",
            "category": "reparer", "minutes": 60} | kw
    return service.create_post(db, actor=author, data=PostIn(**data))


def _titles(result: dict) -> list[str]:
    return [f["properties"]["title"] for f in result["features"]]


def test_migration_snaps_on_the_registers_grid(db):
    """The generated 'shown' column snaps with the register's grid (the migration hard-codes it)."""
    source = (Path(__file__).parents[2] / "commons_map/migrations/versions/0009_exchange.py").read_text()
    assert f"GRID_DEG = {APPROXIMATE_GRID_DEG}" in source


def test_french_aware_search_forgives_accents_and_plurals(db, people):
    lucas = people.member
    _post(db, lucas, title="Réparation de vélos")
    _post(db, lucas, title="Garde de chevaux", category="garder", description="Au pré, le week-end.")
    _post(db, lucas, title="Cours de cuisine", category="apprendre", description="")
    for q, title in [("reparation velo", "Réparation de vélos"), ("réparations vélo", "Réparation de vélos"),
                     ("cheval", "Garde de chevaux"), ("VELOS", "Réparation de vélos")]:
        found = _titles(service.search_posts(db, actor=lucas, q=q, mine=True))
        assert found == [title], (q, found)
    assert _titles(service.search_posts(db, actor=lucas, q="piano", mine=True)) == []


def test_place_is_snapped_for_others_unless_exact(db, people):
    lucas, lea = people.member, people.other_steward
    lon, lat = offset(123, 77)
    approx = _post(db, lucas, place={"type": "Point", "coordinates": [lon, lat]})
    exact = _post(db, lucas, title="Garde d'enfants", category="garder",
                  place={"type": "Point", "coordinates": [lon, lat]}, exact_place=True)
    none = _post(db, lucas, title="Cours de français", category="apprendre")
    own = service.post_feature(db, actor=lucas, post=approx)["geometry"]["coordinates"]
    other = service.post_feature(db, actor=lea, post=approx)["geometry"]["coordinates"]
    assert own == pytest.approx([lon, lat])
    assert other == pytest.approx([round(lon / APPROXIMATE_GRID_DEG) * APPROXIMATE_GRID_DEG,
                                   round(lat / APPROXIMATE_GRID_DEG) * APPROXIMATE_GRID_DEG])
    assert other != pytest.approx([lon, lat])
    assert service.post_feature(db, actor=lea, post=exact)["geometry"]["coordinates"] == pytest.approx([lon, lat])
    assert service.post_feature(db, actor=lea, post=none)["geometry"] is None


def test_near_filters_and_orders_nearest_first(db, people):
    lucas, lea = people.member, people.other_steward
    for name, east in (("loin", 3000), ("près", 100), ("moyen", 1200)):
        lon, lat = offset(east, 0)
        _post(db, lucas, title=f"Vélo {name}", place={"type": "Point", "coordinates": [lon, lat]}, exact_place=True)
    near = service.Near(*ORIGIN, 2000)
    result = service.search_posts(db, actor=lea, q="velo", near=near, category="reparer")
    titles = [t for t in _titles(result) if t.startswith("Vélo ")]
    assert titles == ["Vélo près", "Vélo moyen"]
    distances = [f["properties"]["distance_m"] for f in result["features"]]
    assert distances == sorted(distances)


def test_members_posts_hidden_from_outsiders_and_anonymous(db, people):
    members_only = _post(db, people.member, title="Aide au déménagement", category="s_entraider")
    public = _post(db, people.member, title="Soupe partagée", category="se_nourrir", visibility="public")
    for who in (None, people.outsider):
        with pytest.raises(NotFound):
            service.get_post(db, actor=who, post_id=members_only.id)
        assert service.get_post(db, actor=who, post_id=public.id).id == public.id
        titles = _titles(service.search_posts(db, actor=who, limit=500))
        assert "Soupe partagée" in titles and "Aide au déménagement" not in titles
    feature = service.post_feature(db, actor=None, post=public)
    assert feature["properties"]["author"] is None  # anonymous readers do not learn who posted


def test_since_last_visit(db, people):
    lea = people.other_steward
    service.record_visit(db, actor=lea)
    db.execute(text("UPDATE exchange_visits SET seen_at = now() - interval '1 second'"))
    new = _post(db, people.member, title="Nouvelle annonce de jardinage", category="jardiner")
    titles = _titles(service.search_posts(db, actor=lea, since="last_visit", limit=500))
    assert new.title in titles
    assert all(f["properties"]["created_at"] >= new.created_at.isoformat()
               for f in service.search_posts(db, actor=lea, since="last_visit", limit=500)["features"])


def test_bad_posts_write_nothing(db, people):
    before = db.scalar(select(func.count()).select_from(Post))
    cases = [({"minutes": 0}, "minutes"), ({"minutes": -5}, "minutes"), ({"minutes": 5000}, "minutes"),
             ({"category": "astrologie"}, "category"), ({"kind": "gift"}, "kind"), ({"title": "  "}, "title"),
             ({"visibility": "secret"}, "visibility"), ({"expires_in_days": 400}, "expires_in_days"),
             ({"place": {"type": "Polygon", "coordinates": []}}, "place"),
             ({"place": {"type": "Point", "coordinates": [500, 0]}}, "place")]
    for change, name in cases:
        with pytest.raises(ValidationFailed) as err:
            _post(db, people.member, **change)
        assert err.value.field == name, change
    assert db.scalar(select(func.count()).select_from(Post)) == before


def test_update_renew_archive(db, people):
    post = _post(db, people.member)
    with pytest.raises(PermissionDenied):
        service.update_post(db, actor=people.other_steward, post_id=post.id, data=PostPatch(title="Autre"))
    db.execute(text(f"UPDATE exchange_posts SET expires_at = now() + interval '1 day' WHERE id = {post.id}"))
    db.expire(post)
    renewed = service.update_post(db, actor=people.member, post_id=post.id, data=PostPatch(renew=True, minutes=90))
    assert renewed.minutes == 90 and renewed.expires_at > service._now(db) + timedelta(days=59)
    service.update_post(db, actor=people.member, post_id=post.id, data=PostPatch(archived=True))
    with pytest.raises(NotFound):  # archived posts are gone for others
        service.reply(db, actor=people.other_steward, post_id=post.id)


def _fresh_pair(db):
    return _member(db, "chloe"), _member(db, "samir")


def test_an_exchange_from_reply_to_payment(db, people):
    provider, receiver = _fresh_pair(db)
    post = _post(db, provider, title="Taille de haies", category="jardiner", minutes=120)
    ex = service.reply(db, actor=receiver, post_id=post.id, minutes=90, message="Samedi ?")
    assert (ex.provider_id, ex.receiver_id, ex.state) == (provider.id, receiver.id, "proposed")
    with pytest.raises(PermissionDenied):
        service.accept(db, actor=receiver, exchange_id=ex.id)  # the one who proposed does not accept
    service.accept(db, actor=provider, exchange_id=ex.id)
    service.done(db, actor=provider, exchange_id=ex.id)
    assert ex.state == "done" and ex.transfer_id is None
    with pytest.raises(Conflict) as twice:
        service.done(db, actor=provider, exchange_id=ex.id)
    assert twice.value.code == "exchange.already_recorded"
    before = {m.id: ledger.balance(db, member=m) for m in (provider, receiver)}
    service.done(db, actor=receiver, exchange_id=ex.id)
    assert ex.transfer_id is not None
    transfer = db.get(Transfer, ex.transfer_id)
    assert f"n° {ex.id}" in transfer.reason and transfer.idempotency_key == f"exchange:{ex.id}:payment"
    assert ledger.balance(db, member=provider) == before[provider.id] + 90
    assert ledger.balance(db, member=receiver) == before[receiver.id] - 90
    with pytest.raises(Conflict) as again:
        service.done(db, actor=receiver, exchange_id=ex.id)
    assert again.value.code == "exchange.already_paid"
    assert db.scalar(select(func.count()).select_from(Transfer).where(
        Transfer.idempotency_key == f"exchange:{ex.id}:payment")) == 1
    actions = db.scalars(select(ExchangeHistory.action).where(ExchangeHistory.exchange_id == ex.id)
                         .order_by(ExchangeHistory.id)).all()
    assert actions == ["proposed", "accepted", "done", "done"]
    assert ledger.check(db, cooperative_id=provider.cooperative_id).breaches == []


def test_reply_refusals_write_nothing(db, people):
    provider, receiver = _fresh_pair(db)
    post = _post(db, provider)
    before = db.scalar(select(func.count()).select_from(Exchange))
    with pytest.raises(ValidationFailed) as own:
        service.reply(db, actor=provider, post_id=post.id)
    assert own.value.code == "exchange.own_post" and own.value.field == "post_id"
    for minutes in (0, -30, 100000):
        with pytest.raises(ValidationFailed) as bad:
            service.reply(db, actor=receiver, post_id=post.id, minutes=minutes)
        assert bad.value.field == "minutes"
    # a member of a cooperative with no accepted clearing line (Crest) to ours: no exchange across
    # (the Diois, which has one, may: tests/api/test_exchange_network.py)
    crest = db.scalars(select(Member).where(Member.username == "gaspard")).one()
    with pytest.raises(PermissionDenied) as no_line:
        service.reply(db, actor=crest, post_id=_post(db, provider, visibility="public").id)
    assert no_line.value.code == "exchange.no_line" and no_line.value.field == "post_id"
    db.execute(text(f"UPDATE exchange_posts SET expires_at = now() - interval '1 day' WHERE id = {post.id}"))
    db.expire(post)
    with pytest.raises(Conflict) as expired:
        service.reply(db, actor=receiver, post_id=post.id)
    assert expired.value.code == "exchange.post_expired"
    assert db.scalar(select(func.count()).select_from(Exchange)) == before


def test_outsiders_of_the_exchange_cannot_act(db, people):
    provider, receiver = _fresh_pair(db)
    ex = service.reply(db, actor=receiver, post_id=_post(db, provider).id)
    for action in (service.accept, service.done, service.cancel, service.dispute):
        with pytest.raises(NotFound):
            action(db, actor=people.other_steward, exchange_id=ex.id)
        with pytest.raises(PermissionDenied):  # coordinators see it, but do not act for the parties
            action(db, actor=people.coordinator, exchange_id=ex.id)
    assert ex.state == "proposed"


def test_limit_refusal_says_by_how_much_and_the_fund_can_pay(db, people):
    provider, receiver = _fresh_pair(db)
    account = ledger.ensure_member_account(db, member=receiver)
    ledger.set_limits(db, actor=people.coordinator, account_id=account.id, min_minutes=account.balance - 30,
                      max_minutes=None)
    ex = service.reply(db, actor=receiver, post_id=_post(db, provider, minutes=90).id)
    service.accept(db, actor=provider, exchange_id=ex.id)
    with pytest.raises(ledger.LimitExceeded) as short:
        service.done(db, actor=receiver, exchange_id=ex.id)
    assert short.value.code == "exchange.limit_below" and short.value.params["short_minutes"] == 60
    assert ex.state == "accepted" and ex.transfer_id is None
    with pytest.raises(PermissionDenied) as unsupported:
        service.ask_fund(db, actor=receiver, exchange_id=ex.id)
    assert unsupported.value.code == "exchange.not_supported"

    a, b = people.coordinator, _member(db, "yasmine")
    for s in (a, b):
        service.appoint_steward(db, actor=people.coordinator, member_id=s.id)
    support = service.propose_support(db, actor=a, member_id=receiver.id, note="Arrivée récente")
    with pytest.raises(ValidationFailed) as four_eyes:
        service.approve_support(db, actor=a, support_id=support.id)
    assert four_eyes.value.code == "exchange.four_eyes"
    with pytest.raises(PermissionDenied):
        service.approve_support(db, actor=people.member, support_id=support.id)
    service.approve_support(db, actor=b, support_id=support.id)
    service.ask_fund(db, actor=receiver, exchange_id=ex.id)
    fund = service._fund_account(db, receiver.cooperative_id)
    start = fund.balance  # the demo's fund holds hours: pin its floor there, as if it were empty
    ledger.set_limits(db, actor=people.coordinator, account_id=fund.id, min_minutes=start, max_minutes=None)
    with pytest.raises(ledger.LimitExceeded) as empty:
        service.done(db, actor=receiver, exchange_id=ex.id)
    assert empty.value.code == "exchange.fund_short"
    service.give(db, actor=people.member, minutes=60, idempotency_key="don-lucas")
    service.give(db, actor=people.coordinator, minutes=60, idempotency_key="don-coop", from_cooperative=True)
    with pytest.raises(PermissionDenied):
        service.give(db, actor=people.member, minutes=60, idempotency_key="don-x", from_cooperative=True)
    service.done(db, actor=receiver, exchange_id=ex.id)
    db.refresh(fund)
    assert fund.balance == start + 30
    seen_by_provider = service.exchange_out(db, actor=provider, exchange=ex)
    assert seen_by_provider["paid_by"] == "solidarity_fund"
    # Who is supported: the stewards and the member, nobody else.
    assert receiver.id in [s["member_id"] for s in service.solidarity_out(db, actor=a)["supports"]]
    assert service.solidarity_out(db, actor=receiver)["my_support"]["active"] is True
    assert "supports" not in service.solidarity_out(db, actor=provider)
    assert service.solidarity_out(db, actor=provider)["my_support"] is None


def test_settle_due_pays_after_14_days_unless_disputed(db, people):
    provider, receiver = _fresh_pair(db)
    exchanges = []
    for i in range(3):
        ex = service.reply(db, actor=receiver, post_id=_post(db, provider, title=f"Service {i}", minutes=30).id)
        service.accept(db, actor=provider, exchange_id=ex.id)
        service.done(db, actor=provider, exchange_id=ex.id)
        exchanges.append(ex)
    service.dispute(db, actor=receiver, exchange_id=exchanges[2].id, reason="Pas venu")
    now = service._now(db)
    ours = {e.id for e in exchanges}
    assert ours.isdisjoint(service.settle_due(db, now=now + timedelta(days=13)).paid)
    report = service.settle_due(db, now=now + timedelta(days=15))  # (the demo's waiting exchange too)
    assert ours & set(report.paid) == {exchanges[0].id, exchanges[1].id}
    assert all(e.transfer_id for e in exchanges[:2]) and exchanges[2].transfer_id is None
    assert service.settle_due(db, now=now + timedelta(days=15)).paid == []
