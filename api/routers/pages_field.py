"""The field forms (log work, log a harvest, record a soil observation), their offline sync,
the installable app (manifest, service worker) and the ODK Collect link as a QR code."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from api import fieldpages, i18n
from api import pagedata as data
from api.web import (
    PREFIX,
    STATIC,
    Form,
    JsonBody,
    PageDep,
    PageRoute,
    errors_from,
    field_values,
    try_action,
)
from commons_map.errors import Conflict, DomainError, NotFound, ValidationFailed

router = APIRouter(route_class=PageRoute, include_in_schema=False)

CATEGORIES = {
    "work": ("land", "garden", "bed", "tool", "place", "housing"),
    "harvest": ("garden", "bed", "land"),
    "soil": ("land", "garden", "bed"),
}
TEMPLATES = {"work": "field_work.html", "harvest": "field_harvest.html", "soil": "field_soil.html"}
DESTINATIONS = (
    "members",
    "shared_meals",
    "households_in_need",
    "other_cooperatives",
    "seed_saving",
    "compost",
)


def destination_label(code: str) -> str:
    """Where food went, in the current language."""
    return {
        "members": i18n.gettext("members"),
        "shared_meals": i18n.gettext("shared meals"),
        "households_in_need": i18n.gettext("households in need"),
        "other_cooperatives": i18n.gettext("other cooperatives"),
        "seed_saving": i18n.gettext("seed saving"),
        "compost": i18n.gettext("compost"),
    }.get(code, code)


def _form_context(page: Any, kind: str) -> dict[str, Any]:
    me = page.require()
    choices = data.commons_options(page.session, me, CATEGORIES[kind])
    ctx: dict[str, Any] = {
        "kind": kind,
        "choices": choices,
        "choices_json": json.dumps(choices),
        "today": data.today_in(page.fmt.tz).isoformat(),
    }
    if kind == "work":
        wl = data.optional("commons_map.worklog.service")
        acts = wl.list_activities(page.session, cooperative_id=me.cooperative_id) if wl else []
        ctx["activities"] = [
            (a.code, a.label_fr if page.locale == "fr" else a.label_en) for a in acts
        ]
        ctx["members"] = [(i, n) for i, n in data.member_options(page.session, me) if i != me.id]
    elif kind == "harvest":
        ctx["destinations"] = [(d, destination_label(d)) for d in DESTINATIONS]
        from commons_map.soil.crops import list_crops

        crops = list_crops(page.session, cooperative_id=me.cooperative_id)
        ctx["crops"] = sorted(((c.code, c.label_fr if page.locale == "fr" else c.label_en) for c in crops),
                              key=lambda pair: pair[1].casefold())
    else:
        soil = data.optional("commons_map.soil.service")
        inds = soil.list_indicators(page.session, cooperative_id=me.cooperative_id) if soil else []
        field_inds = [i for i in inds if i.measured in ("field", "both")]
        ctx["indicators"] = [
            (i.code, i.label_fr if page.locale == "fr" else i.label_en) for i in field_inds
        ]
        ctx["units"] = [
            (f"{i.code}:{u}", data.unit_label(u), i.code) for i in field_inds for u in i.units
        ]
        ctx["methods"] = sorted(
            {(m, data.method_label(m)) for i in field_inds for m in (i.methods or [])},
            key=lambda pair: pair[1],
        )
    return ctx


def _show(
    page: Any,
    kind: str,
    *,
    values: dict[str, str] | None = None,
    errors: Any = None,
    status_code: int = 200,
) -> Response:
    ctx = _form_context(page, kind)
    vals = dict(values or {})
    date_field = {"work": "work_date", "harvest": "harvested_on", "soil": "sampled_on"}[kind]
    vals.setdefault(date_field, ctx["today"])
    cid = page.request.query_params.get("commons_id")
    if cid and "commons_id" not in vals:
        vals["commons_id"] = cid
    return page.render(
        TEMPLATES[kind],
        status_code=status_code,
        values=vals,
        errors=errors or {},
        next_step_text=fieldpages.next_step(kind),
        form_kind=kind,
        **ctx,
    )


def _post(page: Any, kind: str, form: Any) -> Response:
    me = page.require()
    values = field_values(form)
    if kind == "work":
        values["with_member_ids"] = ",".join(str(v) for v in form.getlist("with_member_ids"))
    key = values.get("source_ref") or None
    if key is not None:
        try:
            key = fieldpages.check_key(key)
        except ValidationFailed:
            key = None
    saved, errors = try_action(
        page.session,
        lambda: fieldpages.SAVERS[kind](page.session, me, values, key),
        fields=fieldpages.FIELDS[kind],
        aliases=fieldpages.ALIASES[kind],
    )
    if errors:
        return _show(page, kind, values=values, errors=errors, status_code=422)
    return page.redirect(f"{PREFIX}/{kind}/new", done=f"saved_{kind}")


@router.get(PREFIX + "/work/new")
def work_form(page: PageDep) -> Response:
    """Log work: commons, date, time spent, activity; waits for a steward's approval."""
    return _show(page, "work")


@router.post(PREFIX + "/work/new")
def work_post(page: PageDep, form: Form) -> Response:
    """Save the work log, or show the form again with the service's errors."""
    return _post(page, "work", form)


@router.get(PREFIX + "/harvest/new")
def harvest_form(page: PageDep) -> Response:
    """Log a harvest: where, crop, weight, where the food went."""
    return _show(page, "harvest")


@router.post(PREFIX + "/harvest/new")
def harvest_post(page: PageDep, form: Form) -> Response:
    """Save the harvest, or show the form again with the service's errors."""
    return _post(page, "harvest", form)


@router.get(PREFIX + "/soil/new")
def soil_form(page: PageDep) -> Response:
    """Record a soil observation made in the field."""
    return _show(page, "soil")


@router.post(PREFIX + "/soil/new")
def soil_post(page: PageDep, form: Form) -> Response:
    """Save the observation, or show the form again with the service's errors."""
    return _post(page, "soil", form)


# --- offline sync -----------------------------------------------------------------------------


@router.post(PREFIX + "/sync")
def sync(page: PageDep, body: JsonBody) -> Response:
    """One entry of the phone's queue: {kind, key, fields}. Saved once, whatever the retries.

    201 saved now; 200 already saved earlier (a retry; nothing changed); 409 the key was used for
    different content (the server keeps what it has); 422 the service refused (errors by field).
    """
    if page.member is None:
        return JSONResponse(
            {
                "status": "signed_out",
                "message": page.t("Sign in again to send what waits on this phone."),
            },
            status_code=401,
        )
    me = page.member
    i18n.use(page.locale)
    if (
        not isinstance(body, dict)
        or body.get("kind") not in fieldpages.KINDS
        or not isinstance(body.get("fields"), dict)
    ):
        return JSONResponse(
            {"status": "invalid", "message": page.t("This entry cannot be read.")}, status_code=400
        )
    if body.get("author") != me.username:
        # Saved on this phone by someone else (a shared phone), or before entries knew their author:
        # never sent under this member's name; the phone keeps it for its author.
        return JSONResponse(
            {"status": "held", "message": page.t("This entry was saved by another member: it waits for them.")},
            status_code=403,
        )
    kind = body["kind"]
    fields = {str(k): str(v) for k, v in body["fields"].items() if v is not None}
    try:
        key = fieldpages.check_key(body.get("key"))
        saved = data_attempt(page, lambda: fieldpages.SAVERS[kind](page.session, me, fields, key))
    except (DomainError, ValidationError) as exc:
        errors = errors_from(exc, fields=fieldpages.FIELDS[kind], aliases=fieldpages.ALIASES[kind])
        status = 409 if isinstance(exc, Conflict) else 404 if isinstance(exc, NotFound) else 422
        return JSONResponse(
            {
                "status": "conflict" if status == 409 else "refused",
                "errors": errors,
                "message": "; ".join(m for ms in errors.values() for m in ms),
            },
            status_code=status,
        )
    return JSONResponse(
        {
            "status": "duplicate" if saved.duplicate else "saved",
            "id": saved.id,
            "kind": kind,
            "message": fieldpages.next_step(kind),
        },
        status_code=200 if saved.duplicate else 201,
    )


def data_attempt(page: Any, action: Any) -> Any:
    """Run the save in a savepoint (nothing remains when refused)."""
    from api.web import attempt

    return attempt(page.session, action)


# --- the field page: the forms, what waits on the phone, the ODK Collect link ---------------------


@router.get(PREFIX + "/field")
def field_page(page: PageDep) -> Response:
    """The field forms, what waits to sync, and my ODK Collect link as a QR code."""
    page.require()
    return page.render("field.html", odk=None)


@router.post(PREFIX + "/field/odk")
def field_odk(page: PageDep, form: Form) -> Response:
    """Make a new ODK Collect link for my phone (the old ones keep working until revoked)."""
    me = page.require()
    link = data.new_odk_link(page.session, page.request, me)
    if link is None:
        return page.render("field.html", odk=None, odk_missing=True)
    project = page.cooperative.name if page.cooperative else "commons-map"
    return page.render("field.html", odk=link, qr=data.qr_svg(data.odk_settings(link, project)))


# --- the installable app ------------------------------------------------------------------------


@router.get(PREFIX + "/manifest.webmanifest")
def manifest(page: PageDep) -> Response:
    """The web app manifest: the field forms install on the phone's home screen."""
    body = {
        "name": page.t("Commons — field forms"),
        "short_name": page.t("Commons"),
        "lang": page.locale,
        "start_url": f"{PREFIX}/field",
        "scope": f"{PREFIX}/",
        "display": "standalone",
        "background_color": "#fbfaf6",
        "theme_color": "#1f5f3a",
        "icons": [
            {"src": f"{PREFIX}/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": f"{PREFIX}/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": f"{PREFIX}/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
        "shortcuts": [
            {"name": page.t("Log work"), "url": f"{PREFIX}/work/new"},
            {"name": page.t("Log a harvest"), "url": f"{PREFIX}/harvest/new"},
            {"name": page.t("Record a soil observation"), "url": f"{PREFIX}/soil/new"},
        ],
    }
    return page.finish(
        Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json")
    )


@router.get(PREFIX + "/sw.js")
def service_worker() -> Response:
    """The service worker, served from /app/ so that its scope covers the field forms."""
    resp = Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Service-Worker-Allowed"] = PREFIX + "/"
    return resp
