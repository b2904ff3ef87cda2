"""Demo offers and needs around Saillans: 33 posts in French across the categories, 22 exchanges
done and paid, a few open, and one need paid by the solidarity fund (two stewards approved it).

Everything goes through the services, so the demo ledger still passes `commons-map ledger check`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commons_map.demo.load import offset
from commons_map.exchange import service
from commons_map.exchange.schemas import PostIn

# author, kind, category, title, description, minutes, place (metres east, north of the centre) or None, exact
POSTS = [
    ("hugo", "offer", "reparer", "Réparation de vélos", "Crevaisons, freins, dérailleurs ; j'ai les outils.",
     60, (120, -80), False),
    ("ines", "need", "se_deplacer", "Covoiturage vers Crest le mardi", "Pour le marché et la pharmacie.",
     90, (-300, 150), False),
    ("nour", "offer", "accompagner", "Traduction arabe-français", "Courriers, rendez-vous, démarches.",
     60, None, False),
    ("jeanne", "offer", "se_nourrir", "Confitures et conserves maison", "Atelier conserves au fil des saisons.",
     120, (40, 60), True),
    ("pierre", "need", "bricoler", "Monter une étagère", "Étagère en bois, murs en pierre.", 60, (600, 200), False),
    ("amina", "need", "garder", "Garde d'enfants le mercredi", "Deux enfants, 6 et 9 ans, l'après-midi.",
     180, (-450, -200), False),
    ("chloe", "offer", "jardiner", "Taille des arbres fruitiers", "Pommiers, poiriers : taille d'hiver.",
     120, (900, -600), False),
    ("samir", "offer", "se_deplacer", "Transport avec l'âne et la charrette", "Petits déménagements, bois, foin.",
     120, (1300, 400), False),
    ("marie", "offer", "apprendre", "Cours de couture", "Ourlets, fermetures, retouches.", 90, (30, 50), True),
    ("julien", "need", "se_loger", "Aide pour isoler un grenier", "Laine de bois, un samedi.", 240, (-800, 500), False),
    ("fatou", "offer", "se_nourrir", "Cuisine sénégalaise pour les fêtes", "Thiéboudiène, mafé, bissap.",
     180, None, False),
    ("elise", "offer", "se_soigner", "Massages et soins des pieds", "Pour les personnes âgées à domicile.",
     60, None, False),
    ("oksana", "need", "accompagner", "Accompagnement pour un dossier CAF", "Comprendre et remplir le dossier.",
     90, None, False),
    ("lucas", "offer", "bricoler", "Petite menuiserie", "Réparer une chaise, une porte qui frotte.", 60,
     (200, 300), False),
    ("mamadou", "offer", "jardiner", "Conseils pour le potager", "Semis, rotations, paillage.", 60, (-600, 400),
     False),
    ("lea", "need", "s_entraider", "Aide au déménagement samedi", "Des bras pour porter des cartons.", 180,
     (450, 350), False),
    ("hugo", "offer", "apprendre", "Initiation à la mécanique vélo", "Apprendre à réparer soi-même.", 90,
     (120, -80), False),
    ("ines", "offer", "se_nourrir", "Pain au levain", "Une fournée par semaine, à partager.", 60, (-300, 150), False),
    ("nour", "need", "garder", "Garder mon chat en août", "Deux semaines, passer une fois par jour.", 300,
     (450, 350), False),
    ("jeanne", "need", "jardiner", "Désherber les allées du jardin", "Un matin au frais.", 120, (40, 60), True),
    ("pierre", "offer", "reparer", "Réparation de petit électroménager", "Grille-pain, bouilloires, lampes.",
     60, (600, 200), False),
    ("amina", "offer", "accompagner", "Traduction peul et wolof", "Pour les rendez-vous médicaux.", 60, None, False),
    ("chloe", "need", "se_deplacer", "Emprunter une remorque à vélo", "Pour le marché de Saillans.", 30,
     (900, -600), False),
    ("samir", "need", "reparer", "Réparer une tronçonneuse", "Elle cale au démarrage.", 60, (1300, 400), False),
    ("marie", "need", "se_soigner", "Accompagner à l'hôpital de Die", "Rendez-vous le jeudi matin.", 180,
     (30, 50), True),
    ("julien", "offer", "bricoler", "Électricité : prises et luminaires", "Petits travaux en sécurité.", 90,
     (-800, 500), False),
    ("fatou", "need", "apprendre", "Cours de français écrit", "Pour lire les courriers officiels.", 60, None, False),
    ("elise", "offer", "garder", "Garde de poules et lapins", "Pendant vos vacances.", 120, (-150, -450), False),
    ("lucas", "need", "se_nourrir", "Cueillette de pommes à partager", "Deux arbres chargés, venez cueillir.",
     120, (200, 300), False),
    ("mamadou", "offer", "s_entraider", "Coup de main pour le bois de chauffage", "Fendre et ranger.", 180,
     (-600, 400), False),
    ("lea", "offer", "apprendre", "Soutien scolaire en maths", "Collège et lycée.", 60, (450, 350), False),
    ("hugo", "need", "se_loger", "Chambre pour un ami de passage", "Trois nuits en mars.", 60, None, False),
    ("ines", "offer", "se_soigner", "Tisanes du jardin et conseils", "Plantes médicinales simples.", 30,
     (-300, 150), False),
]


def load(session: Session, demo: Any) -> None:
    """Posts, exchanges and the solidarity fund of the demo cooperative."""
    m = demo.members
    posts = []
    for i, (author, kind, category, title, description, minutes, place, exact) in enumerate(POSTS):
        geometry = None
        if place is not None:
            lon, lat = offset(*place)
            geometry = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
        posts.append(service.create_post(session, actor=m[author], data=PostIn(
            kind=kind, title=title, description=description, category=category, minutes=minutes,
            place=geometry, exact_place=exact, visibility="public" if i % 3 == 0 else "members",
            when="en semaine" if i % 2 else "le week-end")))

    # The solidarity fund: two stewards, gifts, and Oksana supported (proposed by one, approved by the other).
    camille, yasmine = m["camille"], m["yasmine"]
    for steward in (camille, yasmine):
        service.appoint_steward(session, actor=camille, member_id=steward.id)
    service.give(session, actor=camille, minutes=600, idempotency_key="demo-fund-coop", from_cooperative=True)
    for who in ("jeanne", "pierre", "elise"):
        service.give(session, actor=m[who], minutes=60, idempotency_key=f"demo-fund-{who}")
    support = service.propose_support(session, actor=camille, member_id=m["oksana"].id,
                                      note="Arrivée récente, dossier de régularisation en cours.")
    service.approve_support(session, actor=yasmine, support_id=support.id)

    # Who replies to which post: everyone answers posts of others, round the circle.
    repliers = ["lucas", "chloe", "samir", "marie", "julien", "fatou", "elise", "mamadou", "lea", "hugo", "ines",
                "nour", "jeanne", "pierre", "amina"]
    for i, post in enumerate(posts):
        replier = next(r for r in repliers[i % len(repliers):] + repliers if m[r].id != post.author_id)
        exchange = service.reply(session, actor=m[replier], post_id=post.id, message="Bonjour, je suis disponible.")
        if i >= 28:
            continue  # left proposed
        author = next(mb for mb in m.values() if mb.id == post.author_id)
        service.accept(session, actor=author, exchange_id=exchange.id)
        if i >= 26:
            continue  # accepted, not done yet
        provider = next(mb for mb in m.values() if mb.id == exchange.provider_id)
        receiver = next(mb for mb in m.values() if mb.id == exchange.receiver_id)
        service.done(session, actor=provider, exchange_id=exchange.id)
        if i == 25:
            continue  # recorded done by the provider, waiting for the receiver (or 14 days)
        if receiver.username == "oksana":
            service.ask_fund(session, actor=receiver, exchange_id=exchange.id)
        try:
            with session.begin_nested():
                service.done(session, actor=receiver, exchange_id=exchange.id)
        except service.ledger.LimitExceeded:
            pass  # the receiver is at their limit: the exchange stays recorded done
    session.flush()
