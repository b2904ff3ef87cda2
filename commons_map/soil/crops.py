"""The crop catalogue harvests name: shipped crops, a cooperative's own, and how a name finds its crop.

A harvest names its crop by code ("tomato") or by a name a person types ("Tomates", "tomate",
"tomatoes"): names are folded (lower case, accents and punctuation gone, each word made singular)
and matched against the codes, the French and English names and the aliases of the crops the
cooperative offers. Several spellings of one crop are then one crop in the annual report.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, NotFound, ValidationFailed, collector
from commons_map.people.models import Member
from commons_map.people.permissions import require_coordinator
from commons_map.soil.models import Crop

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


def _singular(word: str) -> str:
    if len(word) <= 3:
        return word
    for plural, singular in (("eaux", "eau"), ("oes", "o"), ("ies", "y")):
        if word.endswith(plural):
            return word[: -len(plural)] + singular
    if word[-1] in "sx" and not word.endswith("ss"):
        return word[:-1]
    return word


def fold(name: str) -> str:
    """A name as compared: lower case, no accents, words of letters and digits, each singular.

    >>> fold("Tomates"), fold("tomate"), fold("Pommes-de-terre"), fold("Tomatoes")
    ('tomate', 'tomate', 'pomme de terre', 'tomato')
    """
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(_singular(w) for w in re.split(r"[^a-z0-9]+", plain) if w)


def code_for(name: str) -> str:
    """A crop code made from a name, folded ("Kiwanos cornus" -> "kiwano_cornu")."""
    code = fold(name).replace(" ", "_")[:60] or "crop"
    return code if code[0].isalpha() else f"crop_{code}"[:60]


def _offered(cooperative_id: int | None):  # noqa: ANN202 - a SQL condition
    cond = Crop.cooperative_id.is_(None)
    if cooperative_id is not None:
        cond = or_(cond, Crop.cooperative_id == cooperative_id)
    return cond


def list_crops(session: Session, *, cooperative_id: int | None = None, include_inactive: bool = False) -> list[Crop]:
    """The crops a cooperative's harvests name (shipped and its own), by French name; shipped only
    when ``cooperative_id`` is None."""
    stmt = select(Crop).where(_offered(cooperative_id)).order_by(Crop.label_fr, Crop.code)
    if not include_inactive:
        stmt = stmt.where(Crop.active)
    return list(session.scalars(stmt))


def find_crop(session: Session, *, cooperative_id: int, name: str) -> Crop | None:
    """The crop ``name`` means for the cooperative (a code, or a name in either language, folded)."""
    crops = list_crops(session, cooperative_id=cooperative_id)
    wanted = name.strip()
    for crop in crops:  # a code first, the cooperative's own before a shipped one
        if crop.code == wanted and crop.cooperative_id is not None:
            return crop
    for crop in crops:
        if crop.code == wanted:
            return crop
    folded = fold(wanted)
    if not folded:
        return None
    own_first = sorted(crops, key=lambda c: c.cooperative_id is None)
    for crop in own_first:
        if folded in {fold(crop.code), fold(crop.label_fr), fold(crop.label_en), *crop.aliases}:
            return crop
    return None


def resolve_crop(session: Session, *, cooperative_id: int, name: str, field: str = "crop") -> Crop:
    """The crop ``name`` means, or a ValidationFailed naming ``field`` and the cooperative's codes."""
    crop = find_crop(session, cooperative_id=cooperative_id, name=name)
    if crop is None:
        known = [c.code for c in list_crops(session, cooperative_id=cooperative_id)]
        raise ValidationFailed("soil.unknown_crop", field=field, crop=name.strip(), known=sorted(known))
    return crop


def add_crop(session: Session, *, actor: Member, code: str, label_fr: str, label_en: str,
             aliases: list[str] | None = None) -> Crop:
    """A new crop in the catalogue of the actor's cooperative (coordinators)."""
    require_coordinator(actor, actor.cooperative_id)
    problems = collector()
    if not CODE_RE.match(code):
        problems.add("code", "soil.crop_code_form", code=code)
    if not label_fr.strip():
        problems.add("label_fr", "form.empty")
    if not label_en.strip():
        problems.add("label_en", "form.empty")
    problems.raise_if_any()
    for crop in list_crops(session, cooperative_id=actor.cooperative_id, include_inactive=True):
        if crop.code == code:
            raise Conflict("soil.crop_exists", field="code", crop=code)
    for name in (label_fr, label_en):
        same = find_crop(session, cooperative_id=actor.cooperative_id, name=name)
        if same is not None:
            raise Conflict("soil.crop_same_name", field="label_fr" if name == label_fr else "label_en",
                           name=name.strip(), crop=same.code)
    folded = sorted({fold(a) for a in aliases or [] if fold(a)})
    crop = Crop(cooperative_id=actor.cooperative_id, code=code, label_fr=label_fr.strip(),
                label_en=label_en.strip(), aliases=folded)
    try:
        with session.begin_nested():
            session.add(crop)
            session.flush()
    except IntegrityError:  # added at the same moment by another coordinator
        raise Conflict("soil.crop_exists", field="code", crop=code) from None
    return crop


def set_crop(session: Session, *, actor: Member, code: str, active: bool | None = None,
             label_fr: str | None = None, label_en: str | None = None) -> Crop:
    """Retire, bring back or rename one of the cooperative's own crops (coordinators); harvests keep
    their crop. Shipped crops are the software's and are not changed here."""
    require_coordinator(actor, actor.cooperative_id)
    crop = session.scalar(select(Crop).where(Crop.cooperative_id == actor.cooperative_id, Crop.code == code))
    if crop is None:
        raise NotFound("soil.no_own_crop", field="code", crop=code)
    problems = collector()
    for name, value in (("label_fr", label_fr), ("label_en", label_en)):
        if value is not None and not value.strip():
            problems.add(name, "form.empty")
    problems.raise_if_any()
    if active is not None:
        crop.active = active
    if label_fr is not None:
        crop.label_fr = label_fr.strip()
    if label_en is not None:
        crop.label_en = label_en.strip()
    session.flush()
    return crop


def crop_labels(session: Session, *, cooperative_id: int | None) -> dict[str, dict[str, str]]:
    """Code -> {"fr": …, "en": …} of every crop the cooperative has (retired ones too), for reports."""
    return {c.code: {"fr": c.label_fr, "en": c.label_en}
            for c in sorted(list_crops(session, cooperative_id=cooperative_id, include_inactive=True),
                            key=lambda c: c.cooperative_id is not None)}
