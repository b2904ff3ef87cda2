"""Demo reservations: the tools, the kitchen, the workshop, the guest room and a few garden plots
made reservable with French rules, and a few weeks of past and upcoming bookings.

Everything goes through the reservation services, with the clock given explicitly (``now=``):
past bookings are made as they would have been, days before they started, then checked out and
back in. Times are relative to the day of the load (Europe/Paris), so the calendar always shows
the last three weeks and the next three. Seeded, hence the same shape at every load.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, ValidationFailed
from commons_map.reservations import service
from commons_map.reservations.models import Reservation
from commons_map.reservations.schemas import RulesIn

if TYPE_CHECKING:
    from commons_map.demo.load import DemoResult

PARIS = ZoneInfo("Europe/Paris")

TOOL_RULES = RulesIn(
    booking_mode="members", min_minutes=60, max_minutes=3 * 24 * 60, max_days_ahead=30,
    buffer_minutes=30, max_active_per_member=2,
)
# The shredder is a dangerous machine: a steward shows how to use it first.
SHREDDER_RULES = TOOL_RULES.model_copy(
    update={"booking_mode": "approval", "max_minutes": 24 * 60, "contribution_minutes": 30})
KITCHEN_RULES = RulesIn(
    booking_mode="members", min_minutes=60, max_minutes=8 * 60, max_days_ahead=60, buffer_minutes=30,
    max_active_per_member=2,
    opening_hours={d: [["08:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
    | {"sun": [["09:00", "18:00"]]},
)
WORKSHOP_RULES = RulesIn(
    booking_mode="members", min_minutes=60, max_minutes=5 * 60, max_days_ahead=45, buffer_minutes=15,
    max_active_per_member=3,
    opening_hours={d: [["09:00", "12:30"], ["14:00", "19:00"]] for d in ("tue", "wed", "thu", "fri", "sat")},
)
GUEST_ROOM_RULES = RulesIn(
    booking_mode="approval", min_minutes=24 * 60, max_minutes=3 * 24 * 60, max_days_ahead=90,
    buffer_minutes=3 * 60, max_active_per_member=1, offer_hours=24, contribution_minutes=60,
)
PLOT_RULES = RulesIn(
    booking_mode="approval", min_minutes=30 * 24 * 60, max_minutes=200 * 24 * 60, max_days_ahead=240,
    buffer_minutes=0, max_active_per_member=1, offer_hours=72,
)
PLOTS = ("bed-0-0", "bed-0-1", "bed-1-0", "bed-3-2")
BORROWERS = ["lucas", "chloe", "oksana", "samir", "marie", "julien", "fatou", "elise", "karim", "sofia",
             "bastien", "aurore", "dawit", "amina", "pierre", "hugo"]
PURPOSES_TOOLS = [
    "Préparer les planches du jardin", "Semis d'engrais verts", "Entretien de la haie",
    "Aider les voisins à récolter", "Chantier participatif", "Test d'infiltration avec la classe",
]
PURPOSES_KITCHEN = [
    "Conserves de tomates", "Repas partagé du vendredi", "Atelier pain au levain", "Confitures de coings",
    "Cuisine pour la maraude", "Lacto-fermentation",
]
PURPOSES_WORKSHOP = ["Réparer un vélo", "Affûter les outils", "Repair café", "Fabriquer des nichoirs"]


def _at(day: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    return (day + timedelta(days=days)).replace(hour=hour, minute=minute)


def load(session: Session, result: DemoResult, *, now: datetime | None = None) -> dict[str, int]:
    """Make the demo's tools and places reservable and fill a few weeks of bookings."""
    rng = random.Random(4242)
    m = result.members
    c = result.commons
    now = (now or datetime.now(PARIS)).astimezone(PARIS).replace(second=0, microsecond=0)
    today = now.replace(hour=0, minute=0)
    coordinator = m["camille"]
    counts = {"resources": 0, "bookings": 0, "returned": 0, "cancelled": 0, "conflicts_avoided": 0}

    def rules(key: str, data: RulesIn) -> None:
        service.set_rules(session, actor=coordinator, resource_id=c[key].id, data=data)
        counts["resources"] += 1

    tools = [k for k in c if k.startswith("tool-")]
    for key in tools:
        rules(key, SHREDDER_RULES if key == "tool-5" else TOOL_RULES)
    rules("kitchen", KITCHEN_RULES)
    rules("workshop", WORKSHOP_RULES)
    rules("guest-room", GUEST_ROOM_RULES)
    for key in PLOTS:
        rules(key, PLOT_RULES)

    def book(who: str, key: str, start: datetime, end: datetime, purpose: str, *, lead_days: float = 3):
        made_at = min(now, start - timedelta(days=lead_days))
        try:
            r = service.book(session, actor=m[who], resource_id=c[key].id, starts_at=start, ends_at=end,
                             purpose=purpose, now=made_at)
        except (Conflict, ValidationFailed):
            counts["conflicts_avoided"] += 1
            return None
        counts["bookings"] += 1
        return r

    def live(r, *, late: bool = False, damaged: str = "") -> None:  # type: ignore[no-untyped-def]
        """Check a past booking out at its start and back in at (or after) its end."""
        if r is None or r.state != "confirmed":
            return
        out_at = min(now, r.starts_at + timedelta(minutes=rng.choice([0, 5, 10, 20])))
        service.check_out(session, actor=m[_username(m, r.member_id)], reservation_id=r.id, now=out_at,
                          notes=rng.choice(["Propre, en bon état", "RAS", "Manche un peu usé", "Bon état"]))
        back = r.ends_at - timedelta(minutes=rng.choice([0, 15, 40])) if not late else r.ends_at + timedelta(hours=20)
        if back > now:
            return  # still out: overdue or not, as it happens
        service.check_in(session, actor=m[_username(m, r.member_id)], reservation_id=r.id, now=back,
                         notes=damaged or rng.choice(["Nettoyé et rangé", "Rendu propre", "RAS"]),
                         damaged=bool(damaged))
        counts["returned"] += 1

    # Tools: three weeks back, three weeks ahead, two loans a day on average.
    for day in range(-21, 22):
        for _ in range(rng.choice([1, 2, 2, 3])):
            key = rng.choice([t for t in tools if t not in ("tool-3", "tool-5")])
            who = rng.choice(BORROWERS)
            start = _at(today, day, rng.choice([8, 9, 10, 14, 17]))
            end = start + timedelta(hours=rng.choice([3, 4, 24, 48]))
            r = book(who, key, start, end, rng.choice(PURPOSES_TOOLS))
            if r is not None and end <= now:
                live(r, late=rng.random() < 0.05)
            elif r is not None and start <= now:
                live(r)

    # The motobineuse came back damaged ten days ago: in maintenance until a steward clears it.
    r = book("julien", "tool-3", _at(today, -12, 9), _at(today, -11, 12), "Décompacter le Pré Long")
    live(r, damaged="Le câble d'accélérateur a lâché, la fraise gauche est voilée")

    # The shredder needs a steward's approval.
    shredder_steward = m[_username(m, c["tool-5"].steward_rows[0].member_id)]
    r = book("karim", "tool-5", _at(today, -9, 9), _at(today, -9, 17), "Broyer les tailles de la haie")
    if r is not None:
        service.approve(session, actor=shredder_steward, reservation_id=r.id, now=r.starts_at - timedelta(days=2),
                        note="Je passe montrer le broyeur à 9 h")
        live(r)
    r = book("marie", "tool-5", _at(today, 5, 14), _at(today, 5, 18), "Broyat pour pailler le jardin de la Gare")

    # The kitchen: shared meals, preserves, bread.
    for day in range(-21, 22):
        if rng.random() < 0.55:
            local = today + timedelta(days=day)
            hour = 9 if local.weekday() == 6 else rng.choice([9, 14, 18])
            start = _at(today, day, hour)
            r = book(rng.choice(BORROWERS), "kitchen", start, start + timedelta(hours=rng.choice([2, 3, 4])),
                     rng.choice(PURPOSES_KITCHEN))
            if r is not None and r.ends_at <= now:
                live(r)

    # The workshop, repair café on Saturdays.
    for day in range(-21, 22):
        local = today + timedelta(days=day)
        if local.weekday() in (1, 2, 3, 4, 5) and rng.random() < 0.5:
            start = _at(today, day, 14 if local.weekday() == 5 else rng.choice([9, 14, 16]))
            r = book(rng.choice(BORROWERS), "workshop", start, start + timedelta(hours=rng.choice([1, 2, 3])),
                     "Repair café" if local.weekday() == 5 else rng.choice(PURPOSES_WORKSHOP))
            if r is not None and r.ends_at <= now:
                live(r)
    # The workshop's stove is serviced next week (planned maintenance).
    ws_start = _at(today, 8, 8)
    blocking = service._overlapping(session, c["workshop"].id, ws_start, _at(today, 8, 20))
    if blocking is None:
        service.declare_maintenance(session, actor=coordinator, resource_id=c["workshop"].id, starts_at=ws_start,
                                    ends_at=_at(today, 8, 20), reason="Ramonage du poêle et contrôle électrique",
                                    now=now - timedelta(days=14))

    # The guest room: guests from other cooperatives, approved by its steward.
    room_steward = m["yasmine"]
    stays = [("oksana", -18, 2, True), ("dawit", -10, 3, True), ("fatou", -3, 2, True), ("samir", 4, 2, True),
             ("elise", 12, 3, False)]
    for who, day, nights, approved in stays:
        r = book(who, "guest-room", _at(today, day, 15), _at(today, day + nights, 11),
                 "Accueil d'une coopératrice du Diois" if who != "dawit" else "Famille de passage", lead_days=10)
        if r is None:
            continue
        if approved:
            service.approve(session, actor=room_steward, reservation_id=r.id, now=r.starts_at - timedelta(days=5),
                            note="Draps dans l'armoire, clé à la Maison commune")
            if r.ends_at <= now:
                live(r)
    # A cancellation, in the first free kitchen slot of the day after tomorrow.
    free = service.availability(session, actor=m["chloe"], resource_id=c["kitchen"].id,
                                start=_at(today, 2, 0), end=_at(today, 3, 0), now=now)["free"]
    if free:
        start = free[0]["starts_at"]
        r = book("yasmine", "kitchen", start, start + timedelta(hours=1), "Pâtisseries pour la fête", lead_days=1)
        if r is not None:
            service.cancel(session, actor=m["yasmine"], reservation_id=r.id, reason="Fête reportée",
                           now=min(now, r.starts_at - timedelta(hours=20)))
            counts["cancelled"] += 1
    # A no-show last week: the ladder was never collected.
    ladder = c["tool-14"]
    free = service.availability(session, actor=m["bastien"], resource_id=ladder.id, start=_at(today, -6, 8),
                                end=_at(today, -5, 20), now=_at(today, -8, 8))["free"]
    if free and free[0]["ends_at"] - free[0]["starts_at"] >= timedelta(hours=3):
        start = free[0]["starts_at"]
        r = book("bastien", "tool-14", start, start + timedelta(hours=3), "Cueillir les pommes", lead_days=2)
        if r is not None:
            steward = m[_username(m, ladder.steward_rows[0].member_id)]
            service.mark_no_show(session, actor=steward, reservation_id=r.id, now=start + timedelta(hours=1))

    # Garden plots for the season.
    r = book("oksana", "bed-0-0", _at(today, 10, 8), _at(today, 100, 8), "Courges et haricots pour l'hiver",
             lead_days=2)
    if r is not None:
        service.approve(session, actor=m[_username(m, c["bed-0-0"].steward_rows[0].member_id)]
                        if c["bed-0-0"].steward_rows else coordinator, reservation_id=r.id, now=now)
    book("samir", "bed-1-0", _at(today, 14, 8), _at(today, 120, 8), "Plants de tomates anciennes", lead_days=2)

    # Someone waits for a taken kitchen slot, the first one after tomorrow.
    taken = session.scalars(
        select(Reservation).where(
            Reservation.resource_id == c["kitchen"].id, Reservation.state == "confirmed",
            Reservation.starts_at > now + timedelta(days=1), Reservation.member_id != m["aurore"].id,
        ).order_by(Reservation.starts_at).limit(1)
    ).first()
    if taken is not None and taken.ends_at is not None:
        service.wait(session, actor=m["aurore"], resource_id=c["kitchen"].id, starts_at=taken.starts_at,
                     ends_at=taken.ends_at, now=now)
    session.flush()
    return counts


def _username(members: dict, member_id: int | None) -> str:
    for username, member in members.items():
        if member.id == member_id:
            return username
    raise KeyError(member_id)
