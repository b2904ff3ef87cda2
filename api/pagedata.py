"""What the members' pages show, gathered from the services (no rules here, only shaping)."""

from __future__ import annotations

import importlib
import re
import uuid
from datetime import date
from types import ModuleType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.i18n import gettext as _
from api.web import FormErrors
from commons_map.errors import ValidationFailed, collector
from commons_map.people.models import Member
from commons_map.register import service as register
from commons_map.register.models import STATES, Commons, CommonsKind

__all__ = ["FormErrors"]


def optional(module: str) -> ModuleType | None:
    """A module of another feature, or None while it has not landed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# --- labels -----------------------------------------------------------------------------------


def state_label(state: str) -> str:
    """A commons' state in the current language."""
    return {
        "active": _("in use"),
        "restoring": _("being restored"),
        "fallow": _("fallow"),
        "needs_repair": _("needs repair"),
        "out_of_service": _("out of service"),
        "lost": _("lost"),
    }.get(state, state)


def state_options() -> list[tuple[str, str]]:
    """The states a commons can be in, for a select."""
    return [(s, state_label(s)) for s in STATES]


def kind_labeller(locale: str, kinds: list[CommonsKind]) -> Any:
    """A function from kind code to its label in the locale."""
    labels = {k.code: (k.label_fr if locale == "fr" else k.label_en) for k in kinds}
    return lambda code: labels.get(code, code)


def change_label(action: str) -> str:
    """A history action in the current language."""
    return {"created": _("created"), "updated": _("changed"), "archived": _("archived")}.get(
        action, action
    )


def field_label(name: str) -> str:
    """A commons field's name in the current language (for the history)."""
    return {
        "name": _("name"),
        "description": _("description"),
        "state": _("state"),
        "rules_of_use": _("rules of use"),
        "steward_ids": _("stewards"),
        "geometry": _("location"),
        "visibility": _("visibility"),
        "tenure": _("tenure"),
        "kind": _("kind"),
    }.get(name, name)


# --- profile ----------------------------------------------------------------------------------

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def update_profile(
    session: Session, *, member: Member, display_name: str, email: str, locale: str
) -> Member:
    """Change my name, e-mail and language (the people service's rules, checked here first)."""
    people = optional("commons_map.people.service")
    if people is not None and hasattr(people, "update_profile"):
        return people.update_profile(
            session, member=member, display_name=display_name, email=email or None, locale=locale
        )
    problems = collector()
    if not display_name.strip():
        problems.add("display_name", "form.empty")
    if email.strip() and not EMAIL_RE.match(email.strip()):
        problems.add("email", "form.not_an_email", value=email)
    if locale not in ("fr", "en"):
        problems.add("locale", "form.locale")
    problems.raise_if_any()
    member.display_name = display_name.strip()
    member.email = email.strip() or None
    member.locale = locale
    session.flush()
    return member


# --- home -------------------------------------------------------------------------------------


def balance_minutes(session: Session, member: Member) -> int | None:
    """My time balance in minutes (None while the ledger is absent)."""
    ledger = optional("commons_map.ledger.service")
    if ledger is None:
        return None
    return ledger.balance(session, member=member)


def next_reservations(session: Session, member: Member, limit: int = 5) -> list[dict[str, Any]]:
    """My coming bookings, soonest first."""
    res = optional("commons_map.reservations.service")
    if res is None:
        return []
    rows = res.list_my_reservations(
        session,
        actor=member,
        upcoming_only=True,
        states=["requested", "confirmed", "checked_out"],
        limit=limit,
    )
    return [res.reservation_out(session, r) for r in rows]


def awaiting_me(session: Session, member: Member) -> dict[str, list[dict[str, Any]]]:
    """Hours and reservation requests that wait for my decision."""
    out: dict[str, list[dict[str, Any]]] = {"work": [], "reservations": []}
    wl = optional("commons_map.worklog.service")
    if wl is not None:
        logs = wl.awaiting_my_approval(session, actor=member)
        out["work"] = wl.describe(session, logs)
    res = optional("commons_map.reservations.service")
    if res is not None:
        out["reservations"] = [
            res.reservation_out(session, r) | {"member_name": _member_name(session, r.member_id)}
            for r in res.list_to_decide(session, actor=member)
        ]
    return out


def my_recent_logs(session: Session, member: Member, limit: int = 5) -> list[dict[str, Any]]:
    """My latest work logs, newest first."""
    wl = optional("commons_map.worklog.service")
    if wl is None:
        return []
    logs = wl.list_work_logs(session, actor=member, member_id=member.id, limit=limit)
    return wl.describe(session, logs)


def with_photos(session: Session, member: Member | None, logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Work logs (as described) with the photos sent with their field form, as the member may see them."""
    from commons_map.fieldforms.attachments import attachments_out

    return [w | {"photos": attachments_out(session, actor=member, kind="work_log", record_id=w["id"])} for w in logs]


def _member_name(session: Session, member_id: int | None) -> str:
    if member_id is None:
        return ""
    m = session.get(Member, member_id)
    return m.display_name if m else ""


# --- commons ----------------------------------------------------------------------------------


def is_reservable(session: Session, commons: Commons) -> bool:
    """True when the commons has booking rules that are enabled."""
    models = optional("commons_map.reservations.models")
    if models is None:
        return False
    rules = session.get(models.ResourceRules, commons.id)
    return bool(rules is not None and rules.enabled and commons.archived_at is None)


def children(session: Session, actor: Member | None, commons: Commons) -> list[Commons]:
    """The commons inside this one or kept at it, that the viewer may see."""
    return list(
        session.scalars(
            select(Commons)
            .where(
                (Commons.parent_id == commons.id) | (Commons.kept_at_id == commons.id),
                Commons.archived_at.is_(None),
                register.visible_clause(actor),
            )
            .order_by(Commons.name)
        )
    )


def land_figures(session: Session, actor: Member | None, commons: Commons) -> dict[str, Any] | None:
    """Regeneration and food figures of a parcel, garden or bed (None for other commons)."""
    soil = optional("commons_map.soil.service")
    if (
        soil is None
        or commons.kind.category not in ("land", "garden", "bed")
        or commons.area_m2 is None
    ):
        return None
    try:
        summary = soil.parcel_summary(session, actor=actor, commons_id=commons.id)
    except ValidationFailed:
        return None
    harvests = soil.list_harvests(session, actor=actor, commons_id=commons.id, limit=5000)
    by_year: dict[int, float] = {}
    for h in harvests:
        if h.weight_kg:
            by_year[h.harvested_on.year] = by_year.get(h.harvested_on.year, 0.0) + float(
                h.weight_kg
            )
    return {
        "summary": summary,
        "stock_series": list(summary.stock_series),
        "harvest_by_year": sorted(by_year.items()),
        "recent_harvests": harvests[:5],
    }


def status_label(status: str) -> str:
    """A regeneration status in the current language."""
    return {
        "regenerating": _("regenerating"),
        "stable": _("stable"),
        "degrading": _("degrading"),
        "baseline_only": _("first measurements only"),
        "no_data": _("not measured yet"),
    }.get(status, status)


def member_options(session: Session, actor: Member | None) -> list[tuple[int, str]]:
    """The active members of my cooperative, for selects."""
    if actor is None:
        return []
    return [
        (m.id, m.display_name)
        for m in session.scalars(
            select(Member)
            .where(Member.cooperative_id == actor.cooperative_id, Member.is_active)
            .order_by(Member.display_name)
        )
    ]


def commons_options(
    session: Session, actor: Member, categories: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The commons of some categories that I may see, with a point for the small map."""
    listing = register.list_commons(
        session, actor=actor, cooperative_id=actor.cooperative_id, limit=1000
    )
    out = []
    for f in listing["features"]:
        p = f["properties"]
        if p["category"] not in categories:
            continue
        out.append(
            {
                "id": f["id"],
                "name": p["name"],
                "category": p["category"],
                "kind": p["kind"],
                "geometry": f["geometry"],
            }
        )
    out.sort(key=lambda c: (c["category"], c["name"]))
    return out


def today_in(tz: Any) -> date:
    """Today in the cooperative's time zone."""
    from datetime import datetime

    return datetime.now(tz).date()


def work_state(state: str) -> str:
    """A work log's state in the current language."""
    return {
        "submitted": _("waiting for approval"),
        "approved": _("approved"),
        "rejected": _("rejected"),
    }.get(state, state)


def reservation_state(state: str) -> str:
    """A reservation's state in the current language."""
    return {
        "requested": _("waiting for approval"),
        "confirmed": _("confirmed"),
        "checked_out": _("checked out"),
        "returned": _("returned"),
        "cancelled": _("cancelled"),
        "refused": _("refused"),
        "no_show": _("not collected"),
        "maintenance": _("maintenance"),
        "active": _("in progress"),
        "cleared": _("finished"),
    }.get(state, state)


# --- charts as inline SVG (no JavaScript, readable by screen readers through their title) ------


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def line_chart(
    series: list[tuple[date, float]], title: str, fmt: Any, width: int = 340, height: int = 180
) -> str:
    """A small line chart of values over dates, as SVG."""
    if len(series) < 2:
        return ""
    left, right, top, bottom = 44, 10, 12, 28
    xs = [d.toordinal() for d, _v in series]
    ys = [v for _d, v in series]
    x0, x1 = min(xs), max(xs) or 1
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.15 or max(abs(hi) * 0.1, 1.0)
    lo, hi = lo - pad, hi + pad

    def px(x: int) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * (width - left - right)

    def py(y: float) -> float:
        return top + (hi - y) / ((hi - lo) or 1) * (height - top - bottom)

    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    dots = "".join(
        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="#1f5f3a">'
        f"<title>{_esc(fmt.date(d))}: {_esc(fmt.number(y, 1))}</title></circle>"
        for (d, y), x in zip(series, xs, strict=True)
    )
    labels = (
        f'<text x="{left}" y="{height - 8}" font-size="11">{_esc(fmt.date(series[0][0], "short"))}</text>'
        f'<text x="{width - right}" y="{height - 8}" font-size="11" text-anchor="end">'
        f'{_esc(fmt.date(series[-1][0], "short"))}</text>'
        f'<text x="{left - 4}" y="{py(max(ys)) + 4:.1f}" font-size="11" text-anchor="end">'
        f"{_esc(fmt.number(max(ys), 1))}</text>"
        f'<text x="{left - 4}" y="{py(min(ys)) + 4:.1f}" font-size="11" text-anchor="end">'
        f"{_esc(fmt.number(min(ys), 1))}</text>"
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">'
        f"<title>{_esc(title)}</title>"
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#6b6b6b"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#6b6b6b"/>'
        f'<polyline points="{pts}" fill="none" stroke="#1f5f3a" stroke-width="2.5"/>{dots}{labels}</svg>'
    )


def bar_chart(
    values: list[tuple[Any, float]], title: str, fmt: Any, width: int = 340, height: int = 180
) -> str:
    """A small bar chart (label, value), as SVG."""
    if not values:
        return ""
    left, right, top, bottom = 10, 10, 18, 28
    top_value = max(v for _k, v in values) or 1
    n = len(values)
    slot = (width - left - right) / n
    bars = []
    for i, (label, v) in enumerate(values):
        h = (v / top_value) * (height - top - bottom)
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="#3b7d55">'
            f"<title>{_esc(str(label))}: {_esc(fmt.kg(v))}</title></rect>"
            f'<text x="{x + slot * 0.35:.1f}" y="{height - 10}" font-size="11" text-anchor="middle">'
            f"{_esc(str(label))}</text>"
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">'
            f"{_esc(fmt.number(v, 0))}</text>"
        )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">'
        f"<title>{_esc(title)}</title>{''.join(bars)}</svg>"
    )


def _register_globals() -> None:
    from api.web import templates

    templates.globals.update(
        state_label=state_label,
        status_label=status_label,
        work_state=work_state,
        reservation_state=reservation_state,
        field_label=field_label,
        change_label=change_label,
        chart=line_chart,
        bars=bar_chart,
        new_key=lambda: str(uuid.uuid4()),
        options_of=lambda choices: [(c["id"], c["name"]) for c in choices],
        pairs=lambda items: [(i, i) for i in items],
    )


_register_globals()


# --- ODK Collect link ---------------------------------------------------------------------------


def new_odk_link(session: Session, request: Any, member: Member) -> str | None:
    """A new field-form token for my phone, as the server URL ODK Collect wants (None if absent)."""
    ff = optional("commons_map.fieldforms.service")
    if ff is None or not hasattr(ff, "issue_token"):
        return None
    secret, _row = ff.issue_token(
        session, actor=member, member=member, label="phone (members' pages)"
    )
    base = str(request.base_url).rstrip("/")
    return f"{base}/openrosa/key/{secret}"


def odk_settings(url: str, project: str) -> str:
    """ODK Collect's QR payload: its settings as JSON, zlib-compressed, base64 (as ODK Central makes)."""
    import base64
    import json
    import zlib

    settings = {
        "general": {
            "server_url": url,
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "admin": {},
        "project": {"name": project, "icon": "C", "color": "#1f5f3a"},
    }
    return base64.b64encode(zlib.compress(json.dumps(settings).encode())).decode()


def qr_svg(text: str) -> str:
    """A QR code of ``text`` as inline SVG (segno)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(
        buf, kind="svg", scale=6, border=2, xmldecl=False, svgns=True, dark="#000", light="#fff"
    )
    return buf.getvalue().decode()


def method_label(code: str) -> str:
    """A soil method's name in the current language (the code is what is stored)."""
    return {
        "ring": _("ring (cylinder)"),
        "sieve_2mm": _("2 mm sieve"),
        "water": _("in water"),
        "cacl2": "CaCl₂",
        "kcl": "KCl",
        "strip": _("test strip"),
        "slake_test": _("slake test"),
        "slakes_app": _("Slakes app"),
        "single_ring_15cm": _("single ring, 15 cm"),
        "hand_sorting": _("hand sorting"),
        "cone_penetrometer": _("cone penetrometer"),
        "spade_test": _("spade test"),
        "feel": _("by feel"),
        "hydrometer": _("hydrometer"),
        "pipette": _("pipette"),
        "dry_combustion": _("dry combustion"),
        "walkley_black": "Walkley-Black",
        "loss_on_ignition": _("loss on ignition"),
    }.get(code, code.replace("_", " "))


def unit_label(unit: str) -> str:
    """A unit as a member reads it (the code is what is stored)."""
    return {
        "count/pit": _("count per pit"),
        "count/m2": _("count per m²"),
        "class": _("class"),
        "index": _("index"),
        "score": _("score"),
        "min/25mm": _("min per 25 mm"),
        "% vol": _("% by volume"),
        "cm3": "cm³",
        "g/cm3": "g/cm³",
        "t/m3": "t/m³",
        "Mg/m3": "Mg/m³",
        "kg/m3": "kg/m³",
    }.get(unit, unit)
