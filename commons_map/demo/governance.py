"""Demo governance: two circles, decided proposals (a garden's new watering rule, a steward named by
consent, a limit raised by vote, two agreements, one of them due for review) and one proposal open
now, public, for the town hall to read. Everything goes through the services, relative to the day the
demo is loaded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from commons_map.governance import service
from commons_map.governance.models import Proposal
from commons_map.governance.schemas import CircleIn, EffectIn, PositionIn, ProposalIn


def _decide(session: Session, author: Any, *, days_ago: int, positions: list[tuple[Any, str, str]],
            **kw: Any) -> Proposal:
    """A proposal opened ``days_ago`` days ago for a week, the positions taken, then closed."""
    opened = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    p = service.create_proposal(session, actor=author, now=opened,
                                data=ProposalIn(closes_at=opened + timedelta(days=7), **kw))
    for i, (who, choice, reason) in enumerate(positions):
        service.take_position(session, actor=who, proposal_id=p.id, now=opened + timedelta(hours=3 + 5 * i),
                              data=PositionIn(choice=choice, reason=reason))
    return service.close(session, actor=None, proposal_id=p.id, now=opened + timedelta(days=7))


def load(session: Session, demo: Any) -> None:
    """Circles, decided proposals, agreements and one open proposal in the demo cooperative."""
    m, c = demo.members, demo.commons
    coordinator = m["camille"]
    gardens = service.create_circle(session, actor=coordinator, data=CircleIn(
        name="Cercle des jardins", description="Les jardins partagés et leurs planches.",
        members=[m[u].id for u in ("mamadou", "lea", "hugo", "ines", "nour", "jeanne")],
        thresholds={"member": 3, "facilitator": 4}))
    service.create_circle(session, actor=coordinator, data=CircleIn(
        name="Cercle outils et atelier", description="La cabane à outils, l'atelier de réparation.",
        members=[m[u].id for u in ("pierre", "amina", "yasmine")], thresholds={"member": 2}))
    # Trust: two of the gardens' circle trust Chloé; a third would bring her in.
    for giver in ("mamadou", "lea"):
        service.give_trust(session, actor=m[giver], receiver="chloe", circle_id=gardens.id)

    garden = c["garden-3"]
    _decide(session, m["hugo"], days_ago=60, participation="circle", circle_id=gardens.id, quorum=4,
            title=f"{garden.name} : arroser le matin en été",
            text="De juin à août, on arrose avant 9 h pour limiter l'évaporation ; le soir seulement en cas de "
                 "canicule. Le tableau d'arrosage reste à la cabane.",
            effect=EffectIn(type="commons_rules", target=garden.id,
                            value="Arrosage avant 9 h de juin à août (le soir seulement en canicule) ; outils rangés "
                                  "à la cabane ; récoltes partagées selon le tableau."),
            positions=[(m["hugo"], "consent", ""), (m["mamadou"], "consent", ""),
                       (m["lea"], "concern", "Les bénévoles du matin sont peu nombreux : faisons un planning."),
                       (m["ines"], "consent", ""), (m["nour"], "consent", "")])
    seeds = c["seeds"]
    _decide(session, m["amina"], days_ago=45, title=f"Chloé Arnaud référente de la {seeds.name.lower()}",
            text="Chloé s'occupe déjà des échanges de graines le samedi ; elle en devient référente.",
            effect=EffectIn(type="steward_grant", target=seeds.id, value=m["chloe"].id),
            positions=[(m["amina"], "consent", ""), (m["camille"], "consent", ""), (m["julien"], "consent", ""),
                       (m["sofia"], "concern", "Qu'elle ne reste pas seule : un binôme l'an prochain ?")])
    _decide(session, m["yasmine"], days_ago=30, method="vote", threshold="simple",
            title="Relever la limite basse de Dawit à −40 h",
            text="Dawit s'installe et rend beaucoup de services avant d'en recevoir ; sa limite basse passe de "
                 "−20 h à −40 h pendant un an.",
            effect=EffectIn(type="account_limits", target=m["dawit"].id,
                            value={"min_minutes": -40 * 60, "max_minutes": None}),
            positions=[(m["yasmine"], "yes", ""), (m["thomas"], "yes", ""), (m["karim"], "yes", ""),
                       (m["fatou"], "yes", ""), (m["elise"], "no", "Préférons une aide ponctuelle."),
                       (m["marie"], "abstain", "")])
    today = date.today()
    _decide(session, m["pierre"], days_ago=200, title="Charte de la cabane à outils",
            text="Adopter la charte de la cabane pour un an.",
            effect=EffectIn(type="agreement_adopt", value={
                "title": "Charte de la cabane à outils",
                "text": "Emprunt de 3 jours au plus ; outils rendus propres et affûtés ; toute casse se signale "
                        "le jour même ; la cabane ferme à 20 h.",
                "review_on": (today - timedelta(days=12)).isoformat()}),
            positions=[(m["pierre"], "consent", ""), (m["amina"], "consent", ""), (m["bastien"], "consent", "")])
    _decide(session, m["yasmine"], days_ago=90, title="Accord d'accueil de la chambre d'amis",
            text="Adopter l'accord d'accueil des personnes de passage.",
            effect=EffectIn(type="agreement_adopt", value={
                "title": "Accueil dans la chambre d'amis",
                "text": "Trois nuits au plus ; une personne de la coopérative accueille ; draps fournis, "
                        "ménage par l'accueillant·e.",
                "review_on": (today + timedelta(days=180)).isoformat()}),
            positions=[(m["yasmine"], "consent", ""), (m["thomas"], "consent", ""), (m["samir"], "consent", "")])
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    p = service.create_proposal(session, actor=m["yasmine"], now=now - timedelta(days=2), data=ProposalIn(
        title="Ouvrir la chambre d'amis aux voyageurs du réseau",
        text="Les membres des coopératives partenaires (Diois, Crest) pourraient réserver la chambre d'amis "
             "deux nuits par mois, sur accueil d'une personne de chez nous.",
        public=True, quorum=5, closes_at=now + timedelta(days=5)))
    for who, choice, reason in ((m["thomas"], "consent", ""), (m["samir"], "concern", "Qui fait le ménage ?")):
        service.take_position(session, actor=who, proposal_id=p.id, now=now - timedelta(days=1),
                              data=PositionIn(choice=choice, reason=reason))
    session.flush()
