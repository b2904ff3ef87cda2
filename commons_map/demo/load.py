"""A deterministic, realistic demo cooperative in the Drôme valley around Saillans (France).

Everything is created through the services, so the demo has the same history rows, checks and
rules as real data. DEMO ONLY: every account shares the password in DEMO_PASSWORD.
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from shapely.geometry import MultiPolygon, Point, Polygon, mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.geo import to_ewkt
from commons_map.people.models import Cooperative, Member
from commons_map.people.service import create_member
from commons_map.register.models import Commons
from commons_map.register.schemas import CommonsIn
from commons_map.register.service import create_commons

DEMO_SLUG = "cic-saillans"
DEMO_PASSWORD = "demo-commons"
OTHER_SLUG = "cic-diois"

# Saillans town centre, and a territory along the Drôme valley (real coordinates, WGS84).
ORIGIN = (5.1950, 44.6975)
TERRITORY = [
    (5.1050, 44.6760), (5.1600, 44.6650), (5.2300, 44.6700), (5.2850, 44.6850),
    (5.2900, 44.7150), (5.2400, 44.7350), (5.1700, 44.7300), (5.1150, 44.7100), (5.1050, 44.6760),
]
OTHER_TERRITORY = [
    (5.3400, 44.7200), (5.4000, 44.7250), (5.4100, 44.7700), (5.3500, 44.7700), (5.3400, 44.7200),
]

MEMBERS = [
    # username, display name, coordinator, locale
    ("camille", "Camille Roux", True, "fr"),
    ("yasmine", "Yasmine Benali", True, "fr"),
    ("thomas", "Thomas Girard", True, "en"),
    ("mamadou", "Mamadou Diallo", False, "fr"),
    ("lea", "Léa Fontaine", False, "fr"),
    ("hugo", "Hugo Morel", False, "fr"),
    ("ines", "Inès Laurent", False, "fr"),
    ("nour", "Nour Haddad", False, "fr"),
    ("jeanne", "Jeanne Chabert", False, "fr"),
    ("pierre", "Pierre Vial", False, "fr"),
    ("amina", "Amina Sow", False, "fr"),
    ("lucas", "Lucas Bernard", False, "fr"),
    ("chloe", "Chloé Arnaud", False, "fr"),
    ("oksana", "Oksana Kovalenko", False, "en"),
    ("samir", "Samir Mansouri", False, "fr"),
    ("marie", "Marie Brun", False, "fr"),
    ("julien", "Julien Faure", False, "fr"),
    ("fatou", "Fatou Ndiaye", False, "fr"),
    ("elise", "Élise Reynaud", False, "fr"),
    ("karim", "Karim Bouzid", False, "fr"),
    ("sofia", "Sofia Ferreira", False, "fr"),
    ("bastien", "Bastien Chapuis", False, "fr"),
    ("aurore", "Aurore Meunier", False, "fr"),
    ("dawit", "Dawit Tesfaye", False, "en"),
]

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(ORIGIN[1]))


def offset(east_m: float, north_m: float, origin: tuple[float, float] = ORIGIN) -> tuple[float, float]:
    """The lon/lat that lies east_m and north_m metres from origin."""
    return (
        round(origin[0] + east_m / M_PER_DEG_LON, 7),
        round(origin[1] + north_m / M_PER_DEG_LAT, 7),
    )


def field_polygon(rng: random.Random, centre: tuple[float, float], width: float, height: float,
                  angle_deg: float, jitter: float = 0.08) -> Polygon:
    """A field-like quadrilateral or pentagon around a local centre (metres), slightly irregular."""
    cx, cy = centre
    a = math.radians(angle_deg)
    corners = [(-width / 2, -height / 2), (width / 2, -height / 2), (width / 2, height / 2), (-width / 2, height / 2)]
    if rng.random() < 0.4:  # a cut corner, as old field limits often have
        corners.insert(3, (width / 2 - width * 0.25, height / 2 + height * 0.1))
    pts = []
    for x, y in corners:
        x *= 1 + rng.uniform(-jitter, jitter)
        y *= 1 + rng.uniform(-jitter, jitter)
        rx, ry = x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)
        pts.append(offset(cx + rx, cy + ry))
    poly = Polygon(pts)
    return poly if poly.is_valid else Polygon(pts).convex_hull


def strips(centre: tuple[float, float], width: float, height: float, angle_deg: float, n: int) -> list[Polygon]:
    """n beds side by side inside a rectangle (local metres), with paths between them."""
    cx, cy = centre
    a = math.radians(angle_deg)
    inner_w, inner_h = width * 0.85, height * 0.8
    path = 0.8
    bed_w = (inner_w - path * (n - 1)) / n
    beds = []
    for i in range(n):
        x0 = -inner_w / 2 + i * (bed_w + path)
        rect = [(x0, -inner_h / 2), (x0 + bed_w, -inner_h / 2), (x0 + bed_w, inner_h / 2), (x0, inner_h / 2)]
        pts = [offset(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)) for x, y in rect]
        beds.append(Polygon(pts))
    return beds


@dataclass
class DemoResult:
    """What the demo load did."""

    cooperative: Cooperative
    members: dict[str, Member]
    commons: dict[str, Commons]
    created: bool


def _geo(shape: object) -> dict:
    return mapping(shape)  # type: ignore[arg-type]


# Land parcels along the valley: restored terraces, meadows, an old orchard.
# (name, centre in metres from the village, width, height, angle, tenure, tenure end, state)
LANDS = [
    ("Terrasses du Rocher", (-2600, 900), 180, 120, 15, "municipal_agreement", date(2031, 12, 31), "restoring"),
    ("Pré de la Drôme", (-1500, -700), 260, 140, -20, "lent", date(2028, 9, 30), "restoring"),
    ("Champ des Chaux", (900, -900), 220, 160, 30, "owned", None, "active"),
    ("Parcelle de la Tuilière", (2300, 600), 150, 110, 5, "lease", date(2030, 3, 31), "restoring"),
    ("Coteau de Saint-Géraud", (-800, 1500), 200, 90, 55, "commons_trust", None, "restoring"),
    ("Friche des Blaches", (3600, -300), 170, 130, -35, "municipal_agreement", date(2029, 6, 30), "fallow"),
    ("Vieux verger de Chabrillan", (-3400, -500), 140, 100, 10, "lent", date(2027, 12, 31), "restoring"),
    ("Prairie du Moulin", (1800, 1700), 240, 120, -10, "owned", None, "active"),
]
# (name, centre, width, height, angle, number of beds)
GARDENS = [
    ("Jardin partagé des Écoles", (-250, 150), 60, 36, 12, 6),
    ("Jardin de la Gare", (650, -300), 48, 30, -25, 5),
    ("Potager du Pré Long", (-1500, -700), 54, 32, 20, 5),
    ("Jardin des Tilleuls", (300, 700), 40, 28, 40, 4),
    ("Jardin nourricier de la Tuilière", (2300, 600), 50, 30, 5, 6),
]
GARDEN_ON_LAND = {2: "land-1", 4: "land-3"}  # gardens laid on a parcel
# (key, kind, name, position)
PLACES = [
    ("shed", "tool_shed", "Cabane à outils des Écoles", (-215, 130)),
    ("kitchen", "kitchen", "Cuisine partagée de la Maison commune", (40, 60)),
    ("workshop", "workshop", "Atelier de réparation", (120, -40)),
    ("seeds", "seed_library", "Grainothèque de la médiathèque", (-60, 210)),
    ("water-1", "water_point", "Point d'eau du Pré Long", (-1480, -660)),
    ("water-2", "water_point", "Point d'eau de la Gare", (660, -280)),
    ("water-3", "water_point", "Source des Terrasses", (-2580, 930)),
    ("compost", "compost", "Compostière collective", (-280, 110)),
    ("hall", "building", "Maison commune", (30, 50)),
]
TOOLS = [
    "Grelinette (campagnole) n°1", "Grelinette (campagnole) n°2", "Semoir de précision Terradonis",
    "Motobineuse électrique", "Remorque vélo", "Broyeur de végétaux", "Tarière manuelle",
    "Sonde pénétrométrique", "Anneau d'infiltration (15 cm)", "Brouette n°1", "Brouette n°2",
    "Presse à fruits", "Déshydrateur solaire", "Scie d'élagage télescopique", "Échelle de cueillette",
]
HOMES = [("Logement de Mamadou et Aminata", (-600, 400), "mamadou"), ("Logement de Nour", (450, 350), "nour"),
         ("Logement de la famille Kovalenko", (-150, -450), "oksana"),
         ("Logement partagé des Tilleuls", (320, 760), "samir")]
STEWARDS = ["mamadou", "lea", "hugo", "ines", "nour", "jeanne", "pierre", "amina"]
# The rooms' demo loaders, in order (each reads what the ones before it made): module, what it adds.
ROOMS = [
    ("ledger", "work logs and time ledger"),
    ("soil", "soil observations, practices, harvests"),
    ("reservations", "bookings of tools and places"),
    ("governance", "circles, decisions, agreements"),
    ("exchange", "offers, needs, exchanges, solidarity"),
]


def load_demo(session: Session, *, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Load the demo cooperative once; a second call finds it and changes nothing."""
    say = progress or (lambda _msg: None)
    existing = session.scalar(select(Cooperative).where(Cooperative.slug == DEMO_SLUG))
    if existing is not None:
        members = {m.username: m for m in session.scalars(select(Member).where(Member.cooperative_id == existing.id))}
        commons = {c.external_id or str(c.id): c
                   for c in session.scalars(select(Commons).where(Commons.cooperative_id == existing.id))}
        return DemoResult(existing, members, commons, created=False)

    coop, other = _cooperatives(session)
    say("cooperatives")
    members = _members(session, coop, other)
    say(f"{len(members)} members")
    register = _Register(session, coop, members)
    for step, label in ((register.lands, "land parcels"), (register.gardens, "gardens and beds"),
                        (register.places, "places"), (register.tools, "tools"), (register.housing, "housing")):
        step()
        say(label)
    result = DemoResult(coop, members, register.commons, created=True)
    for room, _what in ROOMS:
        importlib.import_module(f"commons_map.demo.{room}").load(session, result)
    from commons_map.demo import network as demo_network  # the Diois, Crest, hours that cross, a partner

    demo_network.load(session, saillans=coop, diois=other, members=members, password=DEMO_PASSWORD)
    session.flush()
    return result


def _cooperatives(session: Session) -> tuple[Cooperative, Cooperative]:
    """Saillans, the demo cooperative, and its neighbour upstream, the Diois."""
    coop = Cooperative(
        slug=DEMO_SLUG,
        name="Coopérative Intégrale Citoyenne de Saillans",
        description="Terres, jardins, outils et lieux partagés de la vallée de la Drôme, en monnaie-temps.",
        territory=to_ewkt(MultiPolygon([Polygon(TERRITORY)])),
        timezone="Europe/Paris",
        settings={"balance_min_minutes": -20 * 60, "balance_max_minutes": 100 * 60},
    )
    other = Cooperative(
        slug=OTHER_SLUG,
        name="Coopérative Intégrale du Diois",
        description="Une coopérative voisine, partenaire.",
        territory=to_ewkt(MultiPolygon([Polygon(OTHER_TERRITORY)])),
    )
    session.add_all([coop, other])
    session.flush()
    return coop, other


def _members(session: Session, coop: Cooperative, other: Cooperative) -> dict[str, Member]:
    """Saillans' members (``MEMBERS``) and the Diois' first coordinator."""
    members: dict[str, Member] = {}
    for username, name, coordinator, locale in MEMBERS:
        members[username] = create_member(
            session, cooperative=coop, username=username, display_name=name, password=DEMO_PASSWORD,
            roles={"coordinator"} if coordinator else set(), locale=locale, bootstrap=True,
            email=f"{username}@demo.commons-map.invalid",
        )
    members["diois"] = create_member(
        session, cooperative=other, username="diois", display_name="Rémi (Diois)", password=DEMO_PASSWORD,
        roles={"coordinator"}, bootstrap=True,
    )
    return members


class _Register:
    """Saillans' commons, added by a coordinator through the register's service, keyed as the demo
    rooms look them up (``land-0``, ``garden-2``, ``bed-2-1``, ``shed``, ``tool-3``...)."""

    def __init__(self, session: Session, coop: Cooperative, members: dict[str, Member]) -> None:
        self.session, self.coop, self.members = session, coop, members
        self.commons: dict[str, Commons] = {}
        self.rng = random.Random(20261127)

    def add(self, key: str, **kw: object) -> Commons:
        kw.setdefault("external_id", f"demo:{key}")
        c = create_commons(self.session, actor=self.members["camille"], data=CommonsIn(**kw), cooperative=self.coop)
        self.commons[key] = c
        return c

    def steward(self, i: int) -> int:
        return self.members[STEWARDS[i % len(STEWARDS)]].id

    def lands(self) -> None:
        for i, (name, centre, w, h, angle, tenure, end, state) in enumerate(LANDS):
            kind = "orchard" if "verger" in name.lower() else "land"
            self.add(f"land-{i}", kind=kind, name=name, geometry=_geo(field_polygon(self.rng, centre, w, h, angle)),
                     description=f"{name} : parcelle remise en culture par la coopérative"
                                 " (paillage, haies, engrais verts).",
                     tenure=tenure, tenure_end=end, state=state, visibility="public", steward_ids=[self.steward(i)],
                     rules_of_use="Pas de labour ; toute intervention se note dans le journal de travail.")

    def gardens(self) -> None:
        for gi, (name, centre, w, h, angle, n_beds) in enumerate(GARDENS):
            parent = self.commons.get(GARDEN_ON_LAND.get(gi, ""))
            garden = self.add(
                f"garden-{gi}", kind="garden", name=name,
                geometry=_geo(Polygon([offset(centre[0] + x, centre[1] + y) for x, y in _rect(w, h, angle)])),
                parent_id=parent.id if parent else None,
                description=f"{name} : jardin cultivé collectivement, ouvert aux membres et aux voisins.",
                tenure="municipal_agreement" if gi % 2 == 0 else "lent",
                tenure_end=date(2030, 12, 31), visibility="public",
                steward_ids=[self.steward(gi + 2), self.steward(gi + 5)],
                rules_of_use="Arrosage le soir ; outils rangés à la cabane ; récoltes partagées selon le tableau.")
            for bi, bed in enumerate(strips(centre, w, h, angle, n_beds)):
                self.add(f"bed-{gi}-{bi}", kind="bed", name=f"{name} – planche {bi + 1}", geometry=_geo(bed),
                         parent_id=garden.id, visibility="members" if bi % 3 else "public",
                         description="Planche permanente, culture sans travail du sol.")

    def places(self) -> None:
        for key, kind, name, pos in PLACES:
            # The spring lies on a neighbour's land: shown to the public only roughly.
            precision = "approximate" if key == "water-3" else "exact"
            self.add(key, kind=kind, name=name, geometry=_geo(Point(offset(*pos))), visibility="public",
                     location_precision=precision, description=f"{name}.",
                     steward_ids=[self.steward(len(self.commons))],
                     rules_of_use="Réservation conseillée ; laisser propre et rangé.")

    def tools(self) -> None:
        for ti, name in enumerate(TOOLS):
            self.add(f"tool-{ti}", kind="tool", name=name, kept_at_id=self.commons["shed"].id,
                     visibility="public" if ti % 4 else "members", state="needs_repair" if ti == 3 else "active",
                     description=f"{name}, rangé à la cabane à outils des Écoles.", steward_ids=[self.steward(ti)],
                     rules_of_use="Emprunt de 3 jours au plus ; rendre nettoyé ; signaler toute casse.")

    def housing(self) -> None:
        for hi, (name, pos, steward) in enumerate(HOMES):
            self.add(f"home-{hi}", kind="housing", name=name,
                     geometry=_geo(Polygon([offset(pos[0] + x, pos[1] + y) for x, y in _rect(14, 10, 8 * hi)])),
                     visibility="private", tenure="other", description="Logement de membres (privé).",
                     steward_ids=[self.members[steward].id])
        self.add("guest-room", kind="guest_room", name="Chambre d'amis de la Maison commune",
                 geometry=_geo(Point(offset(32, 52))), visibility="members",
                 description="Chambre pour les personnes de passage et les coopératrices d'autres territoires.",
                 steward_ids=[self.members["yasmine"].id], rules_of_use="Trois nuits au plus ; draps fournis.")
        self.add("hedge", kind="hedge", name="Haie champêtre des Chaux", parent_id=self.commons["land-2"].id,
                 geometry=_geo(_line_buffer(commons_centre=(900, -900))), visibility="public",
                 description="Haie de 120 m plantée en 2023 : cornouiller, noisetier, églantier, érable champêtre.")


def _rect(w: float, h: float, angle_deg: float) -> list[tuple[float, float]]:
    a = math.radians(angle_deg)
    pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2), (-w / 2, -h / 2)]
    return [(x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)) for x, y in pts]


def _line_buffer(commons_centre: tuple[float, float]) -> Polygon:
    cx, cy = commons_centre
    return Polygon([offset(cx + x, cy + y) for x, y in [(-60, -2), (60, -2), (60, 2), (-60, 2), (-60, -2)]])
