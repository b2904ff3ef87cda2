"""Demo work logs and time ledger: a season of volunteer work around Saillans, and services paid.

Everything goes through the services (log_work, approve, reject, correct, pay, pay_cooperative,
reverse), so the demo ledger passes `commons-map ledger check`. Dates are relative to the day
the demo is loaded (a log may not be dated in the future nor more than a year back); everything
else is drawn from a seeded random generator.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.ledger import service as ledger
from commons_map.ledger.service import LimitExceeded
from commons_map.people.models import Member
from commons_map.register.models import Commons
from commons_map.worklog import service as worklog
from commons_map.worklog.schemas import WorkLogIn

SEASON_DAYS = 180

ACTIVITIES_BY_KIND = {
    "garden": ["sowing", "weeding", "mulching", "watering", "harvest", "planting", "composting"],
    "bed": ["sowing", "weeding", "mulching", "watering", "harvest", "planting"],
    "land": ["mulching", "hedge_planting", "pruning", "composting", "soil_sampling", "planting"],
    "orchard": ["pruning", "harvest", "mulching", "planting"],
    "hedge": ["hedge_planting", "pruning", "mulching"],
    "workshop": ["repair", "tool_maintenance", "building", "teaching"],
    "tool_shed": ["tool_maintenance", "cleaning", "repair"],
    "tool": ["tool_maintenance", "repair"],
    "compost": ["composting"],
    "kitchen": ["cleaning", "teaching"],
    "seed_library": ["seed_saving", "teaching"],
    "building": ["building", "cleaning", "repair"],
}

NOTES = {
    "sowing": ["Semis de carottes et radis en ligne.", "Semis d'engrais vert (phacélie, vesce).",
               "Semis de laitues sous voile."],
    "weeding": ["Désherbage manuel des allées.", "Binage des poireaux.", "Arrachage du liseron."],
    "mulching": ["Paillage au foin sur les tomates.", "BRF étalé sur 20 m2.", "Paillage des fraisiers."],
    "watering": ["Arrosage du soir, cuve presque vide.", "Arrosage au goutte-à-goutte, réglage des tuyaux."],
    "harvest": ["Récolte des courgettes et haricots.", "Cueillette des pommes, 3 cagettes.",
                "Récolte des pommes de terre."],
    "planting": ["Plantation de choux et blettes.", "Repiquage des poireaux.", "Plantation d'arbustes."],
    "composting": ["Retournement du tas de compost.", "Tamisage du compost mûr."],
    "pruning": ["Taille d'entretien des fruitiers.", "Taille de la haie côté route."],
    "hedge_planting": ["Plantation de 30 plants de haie champêtre.", "Pose de paillage biodégradable sur la haie."],
    "soil_sampling": ["Prélèvements pour l'analyse de sol (0-30 cm).", "Test d'infiltration à l'anneau."],
    "repair": ["Réparation d'un manche de grelinette.", "Réparation de la remorque vélo."],
    "tool_maintenance": ["Affûtage des sécateurs et des houes.", "Graissage et nettoyage des outils."],
    "building": ["Construction d'un bac à compost en palettes.", "Montage des étagères de l'atelier."],
    "teaching": ["Atelier semences avec les enfants de l'école.", "Initiation à la taille pour 6 personnes."],
    "cleaning": ["Grand rangement et nettoyage.", "Inventaire et rangement des outils."],
    "seed_saving": ["Tri et ensachage des graines de tomates.", "Battage des haricots secs."],
}

REJECTIONS = [
    "Doublon : ces heures sont déjà notées par ailleurs.",
    "La durée semble trop longue pour cette tâche, peux-tu la vérifier ?",
    "Ce travail a eu lieu sur une autre parcelle, merci de refaire la saisie.",
]

SERVICES = [
    ("Réparation de vélo", 60, 120), ("Garde d'enfants", 90, 240), ("Covoiturage jusqu'à Die", 30, 90),
    ("Aide au déménagement", 120, 240), ("Cours de français", 60, 90), ("Couture : ourlets", 30, 60),
    ("Aide administrative (dossier CAF)", 60, 120), ("Coupe de cheveux", 30, 45),
    ("Dépannage informatique", 45, 120), ("Taille des haies du jardin", 90, 180),
    ("Cuisine pour un repas partagé", 60, 180), ("Traduction d'un courrier", 30, 60),
]


def _points(session: Session, ids: list[int]) -> dict[int, dict]:
    rows = session.execute(
        select(Commons.id, func.ST_AsGeoJSON(func.ST_PointOnSurface(Commons.geom), 7))
        .where(Commons.id.in_(ids), Commons.geom.is_not(None))
    ).all()
    return {cid: json.loads(gj) for cid, gj in rows if gj}


def _decider(rng: random.Random, commons: Commons, worker: Member, members: dict[str, Member]) -> Member:
    stewards = [m for m in members.values() if m.id in commons.steward_ids and m.id != worker.id]
    if stewards and rng.random() < 0.75:
        return rng.choice(sorted(stewards, key=lambda m: m.id))
    coordinators = [m for m in members.values()
                    if m.is_coordinator and m.id != worker.id and m.cooperative_id == worker.cooperative_id]
    return rng.choice(sorted(coordinators, key=lambda m: m.id))


def load(session: Session, result: Any) -> None:
    """Accounts for everyone, a season of work logs, some services paid between members."""
    rng = random.Random(20260321)
    coop = result.cooperative
    members: dict[str, Member] = {u: m for u, m in result.members.items() if m.cooperative_id == coop.id}
    for member in result.members.values():
        ledger.ensure_member_account(session, member=member)
        ledger.cooperative_account(session, cooperative_id=member.cooperative_id)

    tz = ZoneInfo(coop.timezone or "Europe/Paris")
    today = datetime.now(tz).date()
    workable = [c for key, c in sorted(result.commons.items())
                if c.kind_code in ACTIVITIES_BY_KIND and c.visibility != "private" and c.archived_at is None]
    # Gardens, beds and land get most of the work, as in a real season.
    weights = [6 if c.kind_code in ("garden", "land", "orchard") else 3 if c.kind_code == "bed" else 1
               for c in workable]
    points = _points(session, [c.id for c in workable])
    workers = sorted(members.values(), key=lambda m: m.username)
    keen = {m.username: 1 + rng.random() * 3 for m in workers}

    logs = []
    for i in range(140):
        worker = rng.choices(workers, weights=[keen[m.username] for m in workers])[0]
        commons = rng.choices(workable, weights=weights)[0]
        activity = rng.choice(ACTIVITIES_BY_KIND[commons.kind_code])
        day = today - timedelta(days=rng.randint(1, SEASON_DAYS))
        minutes = rng.choice([30, 45, 60, 90, 90, 120, 120, 150, 180, 180, 240, 300])
        data: dict[str, Any] = {
            "commons_id": commons.id, "work_date": day, "activity": activity,
            "notes": rng.choice(NOTES[activity]),
        }
        if rng.random() < 0.4:
            start = datetime.combine(day, time(rng.choice([8, 9, 10, 14, 17]), rng.choice([0, 15, 30])), tz)
            data["started_at"], data["ended_at"] = start, start + timedelta(minutes=minutes)
        else:
            data["minutes"] = minutes
        if commons.id in points and rng.random() < 0.5:
            data["location"] = points[commons.id]
        if rng.random() < 0.25:
            others = [m for m in workers if m.id != worker.id]
            data["with_member_ids"] = [rng.choice(others).id]
        if rng.random() < 0.2:
            data["source_ref"] = f"uuid:demo-{i:04d}-{rng.getrandbits(48):012x}"
        log = worklog.log_work(session, actor=worker, data=WorkLogIn(**data))
        logs.append((log, commons, worker))

    for log, commons, worker in logs:
        age = (today - log.work_date).days
        roll = rng.random()
        decider = _decider(rng, commons, worker, members)
        if age <= 10 and roll < 0.7:
            continue  # still awaiting approval
        if roll < 0.08:
            worklog.reject(session, actor=decider, work_log_id=log.id, reason=rng.choice(REJECTIONS))
        elif roll < 0.14 and age <= 30:
            continue
        else:
            try:
                worklog.approve(session, actor=decider, work_log_id=log.id)
            except LimitExceeded:
                continue

    # One approved log corrected afterwards: a reversal and a new, right entry.
    approved = [(log, commons, worker) for log, commons, worker in logs if log.state == "approved"]
    if approved:
        log, commons, worker = approved[3 % len(approved)]
        decider = _decider(rng, commons, worker, members)
        fixed = WorkLogIn(commons_id=log.commons_id, work_date=log.work_date, minutes=max(30, log.minutes - 30),
                          activity=log.activity_code, notes=log.notes + " (durée corrigée)")
        worklog.correct(session, actor=decider, work_log_id=log.id, data=fixed,
                        reason="Durée surestimée, corrigée avec la personne concernée")

    for n in range(36):
        payer, payee = rng.sample(workers, 2)
        what, lo, hi = rng.choice(SERVICES)
        minutes = rng.randrange(lo, hi + 1, 15)
        try:
            ledger.pay(session, payer=payer, payee=payee.username, minutes=minutes, reason=what,
                       idempotency_key=f"demo-payment-{n:03d}")
        except LimitExceeded:
            continue
    # A refund of a service that could not happen, by its payee.
    first = ledger.pay(session, payer=members["lucas"], payee="oksana", minutes=60,
                       reason="Cours d'anglais (annulé ensuite)", idempotency_key="demo-payment-refund")
    ledger.reverse(session, actor=members["oksana"], transfer_id=first.id,
                   reason="Cours annulé : je rends l'heure", idempotency_key="demo-refund-1")
    for n, (who, minutes, what) in enumerate([
        ("chloe", 120, "Contribution : chambre d'amis, deux nuits"),
        ("samir", 60, "Contribution : cuisine partagée pour un anniversaire"),
    ]):
        ledger.pay_cooperative(session, member=members[who], minutes=minutes, reason=what,
                               idempotency_key=f"demo-contribution-{n}")
    session.flush()


def season_bounds(today: date) -> tuple[date, date]:
    """The first and last days the demo's work logs may fall on."""
    return today - timedelta(days=SEASON_DAYS), today - timedelta(days=1)
