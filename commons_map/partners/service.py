"""Partners: list, add, remove, refresh; and what the public map shows of them.

A coordinator lists a partner by the URL of its OGC API - Features landing page. Adding reads it
at once (:mod:`commons_map.partners.fetch`): a URL that is not an OGC API, that redirects where it
may not, loops, is too slow or too big, is refused with that reason and nothing is written.
Afterwards the copy is refreshed in the background (:func:`refresh_due`, from the app's own
scheduler or ``commons-map partners refresh --loop``); a failure marks the partner unavailable
and keeps its last good copy. The public map only ever reads that copy, from our database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commons_map.db import session_scope
from commons_map.errors import Conflict, NotFound, ValidationFailed
from commons_map.partners.fetch import FetchFailed, Limits, Snapshot, check_url, read_partner
from commons_map.partners.models import Partner, PartnerLayer
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import require_coordinator, require_member
from commons_map.tenancy import acting_cooperative

Reader = Callable[..., Snapshot]
MAX_URL = 2000


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def normalise_url(url: str) -> str:
    """The listed URL as stored: trimmed, without a fragment; ``partners.url_invalid`` otherwise."""
    url = (url or "").strip().split("#")[0]
    if len(url) > MAX_URL:
        raise ValidationFailed("partners.url_invalid", field="url", url=url[:200])
    try:
        check_url(url)
    except FetchFailed as exc:
        raise ValidationFailed(exc.code, field="url", **exc.params) from exc
    return url


def list_partners(session: Session, *, actor: Member | None, cooperative: Cooperative) -> list[Partner]:
    """The partners of a cooperative (its members; None: the operator at the console)."""
    if actor is not None:
        require_member(actor, cooperative.id)
    return list(session.scalars(select(Partner).where(Partner.cooperative_id == cooperative.id)
                                .order_by(Partner.id)))


def get_partner(session: Session, *, actor: Member | None, cooperative: Cooperative, partner_id: int) -> Partner:
    """One partner of the cooperative; ``partners.not_found`` for another cooperative's."""
    partner = session.get(Partner, partner_id)
    if partner is None or partner.cooperative_id != cooperative.id:
        raise NotFound("partners.not_found", field="partner_id", partner_id=partner_id)
    return partner


def add_partner(
    session: Session,
    *,
    actor: Member | None,
    cooperative: Cooperative,
    url: str,
    name: str | None = None,
    licence: str | None = None,
    limits: Limits | None = None,
    read: Reader = read_partner,
    now: datetime | None = None,
) -> Partner:
    """List a partner (coordinators): its landing page is read now, and refused with the reason if it
    is not an OGC API - Features that answers in bounds; nothing is written then."""
    if actor is not None:
        require_coordinator(actor, cooperative.id)
    url = normalise_url(url)
    name = (name or "").strip()[:200] or None
    licence = (licence or "").strip()[:200] or None
    if session.scalar(select(Partner.id).where(Partner.cooperative_id == cooperative.id, Partner.url == url)):
        raise Conflict("partners.already_listed", field="url", url=url)
    try:
        snap = read(url, limits=limits)
    except FetchFailed as exc:
        raise ValidationFailed(exc.code, field="url", **exc.params) from exc
    # Every layer is shown under a licence: its own, else the partner's (given here, or its landing page's).
    licence = licence or snap.licence
    if licence is None and any(x.licence is None for x in snap.layers):
        raise ValidationFailed("partners.licence_missing", field="licence", url=url)
    licence = licence or snap.layers[0].licence
    partner = Partner(cooperative_id=cooperative.id, url=url, name=name or snap.title or check_url(url)[1],
                      licence=licence, link=snap.link, added_by_id=actor.id if actor else None)
    try:
        with session.begin_nested():  # two coordinators adding it at once: one wins, the other is told
            session.add(partner)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("partners.already_listed", field="url", url=url) from exc
    record(session, partner=partner, snapshot=snap, now=now)
    return partner


def remove_partner(session: Session, *, actor: Member | None, cooperative: Cooperative, partner_id: int) -> None:
    """Stop showing a partner (coordinators): the partner and its cached layers are deleted."""
    if actor is not None:
        require_coordinator(actor, cooperative.id)
    partner = get_partner(session, actor=actor, cooperative=cooperative, partner_id=partner_id)
    session.delete(partner)
    session.flush()


def record(session: Session, *, partner: Partner, snapshot: Snapshot | None = None,
           failure: FetchFailed | None = None, now: datetime | None = None) -> Partner:
    """Write the outcome of a read: the new layers, or the failure (keeping the last good copy)."""
    now = _now(now)
    partner.checked_at = now
    partner.lease_until = None
    if snapshot is None:
        assert failure is not None, "a read gives a snapshot or a failure"
        partner.status = "unavailable"
        partner.error_code = failure.code
        partner.error_params = {k: v for k, v in failure.params.items() if isinstance(v, str | int | float)}
        session.flush()
        return partner
    session.execute(delete(PartnerLayer).where(PartnerLayer.partner_id == partner.id))
    session.expire(partner, ["layers"])
    for i, layer in enumerate(snapshot.layers):
        session.add(PartnerLayer(
            partner_id=partner.id, collection_id=layer.collection_id, position=i, title=layer.title[:200],
            licence=layer.licence or partner.licence, feature_count=len(layer.features), skipped=layer.skipped,
            truncated=layer.truncated, geojson=layer.geojson(), fetched_at=now))
    partner.status, partner.error_code, partner.error_params, partner.fetched_at = "ok", None, {}, now
    session.flush()
    return partner


def refresh(session: Session, *, actor: Member | None, cooperative: Cooperative, partner_id: int,
            limits: Limits | None = None, read: Reader = read_partner, now: datetime | None = None) -> Partner:
    """Read one partner again now (coordinators); a failure is recorded, not raised."""
    if actor is not None:
        require_coordinator(actor, cooperative.id)
    partner = get_partner(session, actor=actor, cooperative=cooperative, partner_id=partner_id)
    try:
        return record(session, partner=partner, snapshot=read(partner.url, limits=limits), now=now)
    except FetchFailed as exc:
        return record(session, partner=partner, failure=exc, now=now)


@dataclass
class RefreshReport:
    """What one pass of the background refresh did."""

    ok: list[int] = field(default_factory=list)
    unavailable: list[int] = field(default_factory=list)


def claim_due(session: Session, *, max_age: timedelta, lease: timedelta, now: datetime | None = None,
              limit: int = 20) -> list[tuple[int, str]]:
    """Take the partners not checked for ``max_age`` and not held by another refresher; hold them
    for ``lease``. Returns (id, url) pairs."""
    now = _now(now)
    due = (select(Partner.id)
           .where(or_(Partner.checked_at.is_(None), Partner.checked_at < now - max_age),
                  or_(Partner.lease_until.is_(None), Partner.lease_until < now))
           .order_by(Partner.checked_at.asc().nulls_first(), Partner.id)
           .limit(limit).with_for_update(skip_locked=True))
    rows = session.execute(update(Partner).where(Partner.id.in_(due.scalar_subquery()))
                           .values(lease_until=now + lease).returning(Partner.id, Partner.url)).all()
    return [(r[0], r[1]) for r in rows]


def refresh_due(engine: Engine, *, max_age: timedelta, limits: Limits | None = None,
                read: Reader = read_partner, now: datetime | None = None) -> RefreshReport:
    """One background pass: read every partner due, each outside any transaction, then record it.
    Safe to run from several processes at once (each partner is leased to one of them)."""
    limits = limits or Limits()
    report = RefreshReport()
    # The app's role writes a cooperative's rows only as that cooperative (row-level security,
    # commons_map.tenancy): each cooperative's partners are claimed, then recorded, as their own.
    claimed: list[tuple[int, str, int]] = []
    with session_scope(engine) as session:
        for cooperative_id in list(session.scalars(select(Partner.cooperative_id).distinct())):
            with acting_cooperative(session, cooperative_id):
                claimed += [(pid, url, cooperative_id) for pid, url in claim_due(
                    session, max_age=max_age, now=now, lease=timedelta(seconds=limits.partner_seconds * 2 + 30))]
    for partner_id, url, cooperative_id in claimed:
        snapshot: Snapshot | None = None
        failure: FetchFailed | None = None
        try:
            snapshot = read(url, limits=limits)
        except FetchFailed as exc:
            failure = exc
        with session_scope(engine) as session, acting_cooperative(session, cooperative_id):
            partner = session.get(Partner, partner_id)
            if partner is None:  # removed meanwhile
                continue
            record(session, partner=partner, snapshot=snapshot, failure=failure, now=now)
        (report.ok if snapshot is not None else report.unavailable).append(partner_id)
    return report


@dataclass(frozen=True)
class MapLayer:
    """One partner layer as the public map shows it."""

    partner_id: int
    collection_id: str
    title: str
    licence: str
    feature_count: int
    truncated: bool


@dataclass(frozen=True)
class MapPartner:
    """A partner as the public map's legend shows it."""

    id: int
    name: str
    link: str
    licence: str
    available: bool
    fetched_at: datetime | None
    layers: list[MapLayer]


def map_partners(session: Session, *, cooperative_id: int | None = None) -> list[MapPartner]:
    """The partners shown on the public map (of one cooperative, or of all): metadata, no features.
    A partner listed by several cooperatives is shown once."""
    q = select(Partner).order_by(Partner.id)
    if cooperative_id is not None:
        q = q.where(Partner.cooperative_id == cooperative_id)
    layers: dict[int, list[MapLayer]] = {}
    for row in session.execute(select(PartnerLayer.partner_id, PartnerLayer.collection_id, PartnerLayer.title,
                                      PartnerLayer.licence, PartnerLayer.feature_count, PartnerLayer.truncated)
                               .order_by(PartnerLayer.partner_id, PartnerLayer.position)):
        layers.setdefault(row[0], []).append(MapLayer(*row))
    out: list[MapPartner] = []
    seen: set[str] = set()
    for p in session.scalars(q):
        if p.url in seen:
            continue
        seen.add(p.url)
        out.append(MapPartner(id=p.id, name=p.name, link=p.link, licence=p.licence, available=p.status == "ok",
                              fetched_at=p.fetched_at, layers=layers.get(p.id, [])))
    return out


def layer_geojson(session: Session, *, partner_id: int, collection_id: str) -> tuple[bytes, datetime]:
    """The cached GeoJSON of a partner's layer and when it was read; ``partners.no_layer`` if none."""
    row = session.execute(select(PartnerLayer.geojson, PartnerLayer.fetched_at)
                          .where(PartnerLayer.partner_id == partner_id,
                                 PartnerLayer.collection_id == collection_id)).first()
    if row is None:
        raise NotFound("partners.no_layer", field="collection", partner_id=partner_id,
                       collection=collection_id[:200])
    return bytes(row[0]), row[1]


def as_dict(partner: Partner, locale: str = "en") -> dict[str, Any]:
    """A partner as the API and the CLI show it (the failure in ``locale``)."""
    from commons_map.messages import render

    return {
        "id": partner.id, "url": partner.url, "name": partner.name, "licence": partner.licence,
        "link": partner.link, "status": partner.status, "error_code": partner.error_code,
        "error": render(partner.error_code, partner.error_params, locale) if partner.error_code else None,
        "checked_at": partner.checked_at, "fetched_at": partner.fetched_at, "created_at": partner.created_at,
        "layers": [{"collection": x.collection_id, "title": x.title, "licence": x.licence,
                    "features": x.feature_count, "skipped": x.skipped, "truncated": x.truncated}
                   for x in partner.layers],
    }


def limits_from(settings: Any) -> Limits:
    """The read bounds a deployment's settings give (``COMMONS_PARTNERS_*``)."""
    return Limits(request_seconds=settings.partners_timeout_seconds,
                  read_seconds=min(5.0, settings.partners_timeout_seconds),
                  connect_seconds=min(3.0, settings.partners_timeout_seconds),
                  max_bytes=settings.partners_max_bytes,
                  max_total_bytes=max(settings.partners_max_bytes, 4 * settings.partners_max_bytes),
                  max_features=settings.partners_max_features)
