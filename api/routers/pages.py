"""The members' pages: sign in and out, profile and language, home, the commons, members."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from api import i18n
from api import pagedata as data
from api.deps import sign_in
from api.web import (
    PREFIX,
    Form,
    PageDep,
    PageRoute,
    field_values,
    safe_next,
    static_file,
    try_action,
)
from commons_map.errors import AuthenticationFailed, PermissionDenied, ValidationFailed
from commons_map.fieldforms.attachments import commons_photos
from commons_map.people import service as people
from commons_map.people import throttle
from commons_map.people.auth import close_web_session, open_web_session
from commons_map.people.models import Member
from commons_map.register import service as register
from commons_map.register.models import Commons
from commons_map.register.schemas import CommonsPatch

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    """The members' pages live under /app."""
    return RedirectResponse(PREFIX + "/", status_code=307)


@router.get(PREFIX + "/static/{path:path}")
def static(path: str) -> Response:
    """Stylesheets, scripts, icons and the vendored Leaflet."""
    return static_file(path)


# --- signing in and out -----------------------------------------------------------------------


@router.get(PREFIX + "/signin")
def signin_form(page: PageDep, next: str = "") -> Response:
    """The sign-in form."""
    if page.member is not None:
        return page.redirect(safe_next(next))
    return page.render("signin.html", next=safe_next(next) if next else "")


@router.post(PREFIX + "/signin")
def signin(page: PageDep, form: Form) -> Response:
    """Check the username and password; start a session bound to the member."""
    i18n.use(page.locale)
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""))
    try:
        if not username.strip():
            raise ValidationFailed("form.empty", field="username")
        member = sign_in(page.request, page.session, username=username, password=password)
    except (AuthenticationFailed, ValidationFailed, throttle.TooManyAttempts) as exc:
        from api.web import errors_from

        errors = errors_from(exc, fields={"username", "password"})
        if isinstance(exc, AuthenticationFailed):
            errors = type(errors)({"password": [i18n.error_text(exc)]})
        elif isinstance(exc, throttle.TooManyAttempts):
            errors = type(errors)({"": [i18n.error_text(exc)]})
        status = {AuthenticationFailed: 401, ValidationFailed: 422}.get(type(exc), 429)
        return page.render("signin.html", status_code=status, errors=errors, values={"username": username},
                           next=next_url)
    page.ws.sign_in(member)
    open_web_session(page.session, member=member, sid=page.ws.sid)
    return page.redirect(next_url)


@router.post(PREFIX + "/signout")
def signout(page: PageDep, form: Form) -> Response:
    """End this browser's session, on the server too: a copy of the cookie signs nobody in (API
    tokens stay valid)."""
    close_web_session(page.session, sid=page.ws.sid)
    page.ws.sign_out()
    return page.redirect(PREFIX + "/signin", done="signed_out")


@router.post(PREFIX + "/language")
def language(page: PageDep, form: Form) -> Response:
    """Choose the language: saved on the member's profile, or in the visitor's session."""
    locale = str(form.get("locale") or "")
    if locale not in i18n.LOCALES:
        return page.redirect(safe_next(str(form.get("next") or "")))
    page.ws.locale = locale
    page.ws.dirty = True
    if page.member is not None:
        page.member.locale = locale
    return page.redirect(safe_next(str(form.get("next") or "")))


# --- profile ----------------------------------------------------------------------------------


@router.get(PREFIX + "/profile")
def profile(page: PageDep) -> Response:
    """My name, e-mail and language."""
    me = page.require()
    return page.render(
        "profile.html",
        values={"display_name": me.display_name, "email": me.email or "", "locale": me.locale},
    )


@router.post(PREFIX + "/profile")
def profile_save(page: PageDep, form: Form) -> Response:
    """Save my profile; refused input is shown again next to its field."""
    me = page.require()
    values = field_values(form)
    _, errors = try_action(
        page.session,
        lambda: data.update_profile(
            page.session,
            member=me,
            display_name=values.get("display_name", ""),
            email=values.get("email", ""),
            locale=values.get("locale", ""),
        ),
        fields={"display_name", "email", "locale"},
    )
    if errors:
        return page.render("profile.html", status_code=422, errors=errors, values=values)
    page.ws.locale = me.locale
    page.ws.dirty = True
    return page.redirect(PREFIX + "/profile", done="saved")


@router.post(PREFIX + "/profile/password")
def profile_password(page: PageDep, form: Form) -> Response:
    """Change my password (the current one first); my other sessions and tokens end."""
    me = page.require()
    new = str(form.get("new_password") or "")

    def change() -> None:
        if new != str(form.get("confirm_password") or ""):
            raise ValidationFailed("people.passwords_differ", field="confirm_password")
        people.change_password(page.session, actor=me, current_password=str(form.get("current_password") or ""),
                               new_password=new, keep_sid=page.ws.sid)

    _, errors = try_action(page.session, change, fields={"current_password", "new_password", "confirm_password"})
    values = {"display_name": me.display_name, "email": me.email or "", "locale": me.locale}
    if errors:
        return page.render("profile.html", status_code=422, errors=errors, values=values)
    page.ws.version = me.token_version  # this browser stays signed in, with the new version
    page.ws.dirty = True
    return page.redirect(PREFIX + "/profile", done="password_changed")


# --- home -------------------------------------------------------------------------------------


@router.get(PREFIX + "/")
def home(page: PageDep) -> Response:
    """My balance, my next reservations, what awaits my approval."""
    if page.member is None:
        return page.render("welcome.html")
    me = page.member
    return page.render(
        "home.html",
        balance=data.balance_minutes(page.session, me),
        reservations=data.next_reservations(page.session, me, limit=5),
        to_approve=data.awaiting_me(page.session, me),
        my_logs=data.my_recent_logs(page.session, me, limit=5),
    )


# --- the commons ------------------------------------------------------------------------------


@router.get(PREFIX + "/commons")
def commons_list(page: PageDep, kind: str = "", q: str = "") -> Response:
    """A map and a list of the commons I may see, filtered by kind."""
    kinds = register.list_kinds(page.session, cooperative_id=page.member.cooperative_id if page.member else None)
    known = {k.code for k in kinds}
    errors = data.FormErrors()
    if kind and kind not in known:
        errors.add("kind", page.t("Unknown kind: %(kind)s", kind=kind))
        kind = ""
    listing = register.list_commons(
        page.session, actor=page.member, kind=kind or None, q=q.strip() or None, limit=1000
    )
    features = listing["features"]
    return page.render(
        "commons_list.html",
        kinds=kinds,
        kinds_options=[(k.code, data.kind_labeller(page.locale, kinds)(k.code)) for k in kinds],
        kind=kind,
        q=q,
        features=features,
        matched=listing["numberMatched"],
        errors=errors,
        kind_label=data.kind_labeller(page.locale, kinds),
        state_label=data.state_label,
        geojson=json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": f["id"],
                        "geometry": f["geometry"],
                        "properties": {
                            "name": f["properties"]["name"],
                            "url": f"{PREFIX}/commons/{f['id']}",
                            "category": f["properties"]["category"],
                        },
                    }
                    for f in features
                    if f["geometry"]
                ],
            }
        ),
    )


@router.get(PREFIX + "/commons/{commons_id}")
def commons_page(page: PageDep, commons_id: int) -> Response:
    """One commons: state, rules, stewards, history; land figures; booking link."""
    commons = register.get_commons(page.session, actor=page.member, commons_id=commons_id)
    feature = register.commons_feature(page.session, actor=page.member, commons_id=commons_id)
    history = [
        h | {"at_dt": datetime.fromisoformat(h["at"])}
        for h in register.history(page.session, actor=page.member, commons_id=commons_id)
    ]
    kinds = register.list_kinds(page.session)
    return page.render(
        "commons_page.html",
        c=commons,
        feature=feature,
        history=list(reversed(history))[:30],
        kind_label=data.kind_labeller(page.locale, kinds),
        state_label=data.state_label,
        can_edit=register.can_edit(page.member, commons),
        land=data.land_figures(page.session, page.member, commons),
        reservable=data.is_reservable(page.session, commons),
        children=data.children(page.session, page.member, commons),
        photos=commons_photos(page.session, actor=page.member, commons_id=commons.id,
                              cooperative_id=commons.cooperative_id),
        geojson=json.dumps(feature["geometry"]) if feature["geometry"] else "null",
        change_label=data.change_label,
    )


EDITABLE = ("name", "description", "state", "rules_of_use")


@router.get(PREFIX + "/commons/{commons_id}/edit")
def commons_edit_form(page: PageDep, commons_id: int) -> Response:
    """Stewards and coordinators change a commons and its rules."""
    page.require()
    commons = register.get_commons(page.session, actor=page.member, commons_id=commons_id)
    if not register.can_edit(page.member, commons):
        raise PermissionDenied("register.edit_not_allowed")
    values = {k: getattr(commons, k) for k in EDITABLE}
    return page.render(
        "commons_edit.html",
        c=commons,
        values=values,
        states=data.state_options(),
        members=data.member_options(page.session, page.member),
        steward_ids=sorted(commons.steward_ids),
    )


@router.post(PREFIX + "/commons/{commons_id}/edit")
def commons_edit(page: PageDep, commons_id: int, form: Form) -> Response:
    """Save the changes through the register's service (every change leaves a history row)."""
    me = page.require()
    commons = register.get_commons(page.session, actor=me, commons_id=commons_id)
    values = field_values(form)
    steward_ids = [int(v) for v in form.getlist("steward_ids") if str(v).isdigit()]

    def save() -> Commons:
        patch = CommonsPatch(
            name=values.get("name", ""),
            description=values.get("description", ""),
            state=values.get("state") or None,
            rules_of_use=values.get("rules_of_use", ""),
            steward_ids=steward_ids if "stewards_shown" in form else None,
        )
        return register.update_commons(page.session, actor=me, commons_id=commons_id, patch=patch)

    _, errors = try_action(page.session, save, fields=set(EDITABLE) | {"steward_ids"})
    if errors:
        return page.render(
            "commons_edit.html",
            status_code=422,
            c=commons,
            values=values,
            errors=errors,
            states=data.state_options(),
            members=data.member_options(page.session, me),
            steward_ids=steward_ids,
        )
    return page.redirect(f"{PREFIX}/commons/{commons_id}", done="saved")


# --- coordinators: members and roles ------------------------------------------------------------


@router.get(PREFIX + "/members")
def members_page(page: PageDep) -> Response:
    """The cooperative's members and their roles (coordinators manage them)."""
    me = page.require()
    rows = list(
        page.session.scalars(
            select(Member)
            .where(Member.cooperative_id == me.cooperative_id)
            .order_by(Member.display_name)
        )
    )
    return _members(page, me, rows, values={"locale": page.locale})


@router.post(PREFIX + "/members")
def members_add(page: PageDep, form: Form) -> Response:
    """A coordinator adds a member."""
    me = page.require()
    values = field_values(form)
    password = str(form.get("password") or "")

    def add() -> Member:
        return people.create_member(
            page.session,
            cooperative=me.cooperative,
            username=values.get("username", ""),
            display_name=values.get("display_name", ""),
            password=password,
            email=values.get("email") or None,
            locale=values.get("locale", "fr"),
            roles={"coordinator"} if values.get("coordinator") else set(),
            actor=me,
        )

    _, errors = try_action(
        page.session,
        add,
        fields={"username", "display_name", "password", "email", "locale", "roles"},
    )
    if errors:
        rows = list(
            page.session.scalars(
                select(Member)
                .where(Member.cooperative_id == me.cooperative_id)
                .order_by(Member.display_name)
            )
        )
        return _members(page, me, rows, status_code=422, values=values, errors=errors)
    return page.redirect(PREFIX + "/members", done="member_added")


@router.post(PREFIX + "/members/{member_id}/retire")
def members_retire(page: PageDep, member_id: int, form: Form) -> Response:
    """A coordinator retires a member (they can no longer sign in; what they did stays)."""
    me = page.require()
    target = people.get_member(page.session, cooperative_id=me.cooperative_id, username_or_id=member_id)
    _, errors = try_action(page.session, lambda: people.retire_member(page.session, actor=me, member=target),
                           fields=set())
    if errors:
        rows = list(page.session.scalars(
            select(Member).where(Member.cooperative_id == me.cooperative_id).order_by(Member.display_name)))
        return _members(page, me, rows, status_code=409, values={}, errors=errors)
    return page.redirect(PREFIX + "/members", done="member_retired")


@router.post(PREFIX + "/members/{member_id}/roles")
def members_role(page: PageDep, member_id: int, form: Form) -> Response:
    """Grant or take back the coordinator role."""
    me = page.require()
    target = people.get_member(
        page.session, cooperative_id=me.cooperative_id, username_or_id=member_id
    )
    action = str(form.get("action") or "")

    def change() -> Any:
        return people.request_role_change(page.session, actor=me, member=target, role="coordinator",
                                          action=action)

    made, errors = try_action(page.session, change, fields=set())
    if errors:
        rows = list(
            page.session.scalars(
                select(Member)
                .where(Member.cooperative_id == me.cooperative_id)
                .order_by(Member.display_name)
            )
        )
        return _members(page, me, rows, status_code=409, values={}, errors=errors)
    return page.redirect(PREFIX + "/members", done="saved" if made.state == "applied" else "role_asked")


@router.post(PREFIX + "/role-changes/{change_id}/{decision}")
def role_change_decide(page: PageDep, change_id: int, decision: str, form: Form) -> Response:
    """Another coordinator approves a role change; who asked withdraws it, another refuses it."""
    me = page.require()
    if decision not in ("approve", "decline"):
        from commons_map.errors import NotFound

        raise NotFound("form.no_action", action=decision)
    fn = people.approve_role_change if decision == "approve" else people.decline_role_change
    _, errors = try_action(page.session, lambda: fn(page.session, actor=me, change_id=change_id), fields=set())
    if errors:
        rows = list(page.session.scalars(
            select(Member).where(Member.cooperative_id == me.cooperative_id).order_by(Member.display_name)))
        return _members(page, me, rows, status_code=409, values={}, errors=errors)
    return page.redirect(PREFIX + "/members", done="role_approved" if decision == "approve" else "role_declined")


def _members(page: Any, me: Member, rows: list[Member], *, status_code: int = 200, **context: Any) -> Response:
    """The members page, with the role changes waiting for a second coordinator."""
    changes = people.list_role_changes(page.session, actor=me) if me.is_coordinator else []
    names = {m.id: m.display_name for m in rows}
    return page.render("members.html", status_code=status_code, members=rows, changes=changes, names=names,
                       **context)
