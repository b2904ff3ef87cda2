"""The demo network: three cooperatives on neighbouring territories of the Drôme valley.

Saillans (the demo cooperative), the Diois (Die and around, upstream: ``OTHER_TERRITORY``) and Crest (downstream).
Saillans and the Diois opened a clearing line (proposed by a coordinator of Saillans, accepted by
one of the Diois) and a few hours crossed it both ways; Crest proposed a line to the Diois,
not yet accepted. Saillans lists a partner initiative whose layers its public map shows.
Everything goes through the services, as real use would.

The partner is the one thing a demo cannot do for real: it is another initiative's server, and the
demo runs offline. Its listing goes through ``partners.add_partner`` with a reading recorded here
(``PARTNER``: what its OGC API would answer) instead of one over the network; its address is an
example one (``example.org``), so the first background refresh finds it unreachable and the map
then shows it as unavailable with its last copy and that copy's date, as it shows any partner that
is down.
"""

from __future__ import annotations

from shapely.geometry import Polygon
from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.clearing import service as clearing
from commons_map.partners import service as partners
from commons_map.partners.fetch import Layer, Snapshot
from commons_map.people.cooperatives import Founder, add_cooperative
from commons_map.people.models import Cooperative, Member
from commons_map.people.service import create_member

CREST_SLUG = "cic-crest"
# Crest and the lower valley, west of Saillans' territory (real coordinates, WGS84).
CREST_TERRITORY = Polygon([(4.9800, 44.7000), (5.0900, 44.6950), (5.1000, 44.7250), (5.0700, 44.7600),
                           (4.9900, 44.7550), (4.9800, 44.7000)])
DIOIS_MEMBERS = [("maelle", "Maëlle Peyrard", True), ("baptiste", "Baptiste Lagier", False),
                 ("josiane", "Josiane Reboul", False)]
CREST_FOUNDERS = [("odile", "Odile Barnier"), ("youssef", "Youssef Amrani")]
CREST_MEMBERS = [("gaspard", "Gaspard Rey")]
# (payer, payee as user@slug, minutes, reason): hours that crossed the line.
CROSSINGS = [
    ("bastien", "baptiste@cic-diois", 90, "Aide à la taille des abricotiers à Die"),
    ("baptiste", "aurore@cic-saillans", 60, "Atelier de réparation de vélos"),
    ("maelle", "dawit@cic-saillans", 120, "Traduction d'une fiche de culture"),
    ("aurore", "josiane@cic-diois", 45, "Covoiturage vers le marché de Die"),
]


def load(session: Session, *, saillans: Cooperative, diois: Cooperative, members: dict[str, Member],
         password: str) -> dict[str, Member]:
    """Members of the two neighbours, the third cooperative, a clearing line and its payments."""
    added: dict[str, Member] = {}
    for username, name, coordinator in DIOIS_MEMBERS:
        added[username] = create_member(
            session, cooperative=diois, username=username, display_name=name, password=password,
            roles={"coordinator"} if coordinator else set(), bootstrap=True,
        )
    crest = add_cooperative(
        session, slug=CREST_SLUG, name="Coopérative Intégrale Citoyenne de Crest",
        description="Jardins et ateliers partagés de Crest et de la basse vallée.", territory=CREST_TERRITORY,
        timezone="Europe/Paris", languages=["fr", "en"],
        coordinators=[Founder(username=u, password=password, display_name=n) for u, n in CREST_FOUNDERS],
    )
    for username, name in CREST_MEMBERS:
        added[username] = create_member(session, cooperative=crest, username=username, display_name=name,
                                        password=password, bootstrap=True)
    everyone = {**members, **added}
    line = clearing.propose_line(session, actor=members["camille"], partner=diois.slug, limit_minutes=20 * 60)
    clearing.accept_line(session, actor=members["diois"], line_id=line.id)
    for i, (payer, payee, minutes, reason) in enumerate(CROSSINGS):
        clearing.pay_across(session, payer=everyone[payer], payee=payee, minutes=minutes, reason=reason,
                            idempotency_key=f"demo:crossing:{i}")
    odile = session.scalars(select(Member).where(Member.username == "odile")).one()
    clearing.propose_line(session, actor=odile, partner=diois.slug, limit_minutes=10 * 60)
    partners.add_partner(session, actor=members["camille"], cooperative=saillans, url=PARTNER_URL,
                         read=lambda url, limits=None: partner_snapshot())
    return added


PARTNER_URL = "https://jardins-du-diois.example.org/ogc"
PARTNER_LICENCE = "ODbL-1.0"
# (collection, title, [(name, kind, lon, lat)]): shared gardens and seed libraries in and around Die.
PARTNER = [
    ("jardins", "Jardins partagés du Diois", [
        ("Jardin partagé du Martouret", "jardin", 5.3665, 44.7470),
        ("Potager des Chaussières", "jardin", 5.3760, 44.7528),
        ("Jardin de la Recluse", "jardin", 5.3580, 44.7556),
        ("Vergers de Romeyer", "verger", 5.3995, 44.7790),
    ]),
    ("grainotheques", "Grainothèques", [
        ("Grainothèque de la médiathèque de Die", "grainothèque", 5.3712, 44.7536),
        ("Grainothèque de Pontaix", "grainothèque", 5.2665, 44.7615),
    ]),
]


def partner_snapshot() -> Snapshot:
    """What the demo partner's OGC API would answer: its title, licence and two point layers."""
    return Snapshot(
        title="Jardins partagés du Diois (partenaire de démonstration)", licence=PARTNER_LICENCE, link=PARTNER_URL,
        layers=[Layer(cid, title, PARTNER_LICENCE, [
            {"type": "Feature", "id": i + 1, "geometry": {"type": "Point", "coordinates": [lon, lat]},
             "properties": {"name": name, "kind": kind}}
            for i, (name, kind, lon, lat) in enumerate(places)]) for cid, title, places in PARTNER],
    )

