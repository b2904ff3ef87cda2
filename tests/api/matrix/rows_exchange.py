"""Access-matrix rows of the exchange network (/api/v1/exchange): every route, every role.

The subjects: a members-only and a public post of the steward persona (an offer), an exchange the
plain member opened on it (proposed, and another one accepted), with a message in its thread; the
coordinator and the steward are the solidarity fund's stewards where a row needs them.
"""

from __future__ import annotations

from typing import Any

from tests.api.test_access_matrix import SEE_MEMBERS, Row, Subjects, coordinators, every, rule, signed_in

P = "/api/v1/exchange"
MEMBERS_TITLE = "MATRIX-POST-MEMBERS bricolage"
THREAD = "MATRIX-THREAD message"
SUPPORT_NOTE = "MATRIX-SUPPORT-NOTE"


def _post(s: Subjects, visibility: str, title: str) -> int:
    from commons_map.exchange import service
    from commons_map.exchange.schemas import PostIn

    post = service.create_post(s.db, actor=s.people.steward, data=PostIn(
        kind="offer", title=title, category="bricoler", minutes=30, visibility=visibility))
    s.db.flush()
    return post.id


def _cached(s: Subjects, name: str, make: Any) -> Any:
    store = s.__dict__.setdefault("_exchange", {})
    if name not in store:
        store[name] = make()
    return store[name]


def members_post(s: Subjects) -> int:
    return _cached(s, "members_post", lambda: _post(s, "members", MEMBERS_TITLE))


def public_post(s: Subjects) -> int:
    return _cached(s, "public_post", lambda: _post(s, "public", "MATRIX-POST-PUBLIC"))


def _exchange(s: Subjects, accepted: bool) -> int:
    from commons_map.exchange import service

    ex = service.reply(s.db, actor=s.people.member, post_id=_post(s, "members", "Matrice échange"), minutes=20,
                       message=THREAD)
    if accepted:
        service.accept(s.db, actor=s.people.steward, exchange_id=ex.id)
    s.db.flush()
    return ex.id


def proposed(s: Subjects) -> int:
    return _cached(s, "proposed", lambda: _exchange(s, False))


def accepted(s: Subjects) -> int:
    return _cached(s, "accepted", lambda: _exchange(s, True))


def fund_stewards(s: Subjects) -> None:
    from commons_map.exchange import service

    def make() -> bool:
        for who in (s.people.coordinator, s.people.steward):
            service.appoint_steward(s.db, actor=s.people.coordinator, member_id=who.id)
        s.db.flush()
        return True

    _cached(s, "fund_stewards", make)


def support(s: Subjects) -> int:
    from commons_map.exchange import service

    def make() -> int:
        fund_stewards(s)
        amina = s.people.member.__class__
        from sqlalchemy import select

        member = s.db.scalars(select(amina).where(amina.username == "amina")).one()
        sup = service.propose_support(s.db, actor=s.people.coordinator, member_id=member.id, note=SUPPORT_NOTE)
        s.db.flush()
        return sup.id

    return _cached(s, "support", make)


def _propose_body(s: Subjects, role: str) -> dict[str, Any]:
    from sqlalchemy import select

    fund_stewards(s)
    cls = s.people.member.__class__
    member = s.db.scalars(select(cls).where(cls.username == "fatou")).one()
    return {"json": {"member_id": member.id, "note": "matrice"}}


SUBJECTS = {"ex_members_post": members_post, "ex_public_post": public_post, "ex_proposed": proposed,
            "ex_accepted": accepted, "ex_support": support}
TEXTS = {"ex_members_title": lambda s: MEMBERS_TITLE, "ex_thread": lambda s: THREAD,
         "ex_support_note": lambda s: SUPPORT_NOTE}

OURS_SEE = ["member", "steward", "other_steward", "coordinator"]
PARTIES = ["member", "steward"]
# An exchange between the member and the steward: the coordinator sees it but does not act for them;
# others do not learn it exists.
PARTY_ACT = rule(404, anonymous=401, member=200, steward=200, coordinator=403)


def _members_post_listed(s: Subjects, role: str) -> dict[str, Any]:
    members_post(s)
    return {}


ROWS = [
    Row("GET", f"{P}/categories", every(200)),
    Row("POST", f"{P}/categories", coordinators(201, outsider=201),
        body=lambda s, role: {"json": {"code": "matrice", "label_fr": "Matrice", "label_en": "Matrix"}}),
    Row("GET", f"{P}/posts", every(200), body=_members_post_listed, hidden={"ex_members_title": OURS_SEE},
        shown=True),
    Row("POST", f"{P}/posts", signed_in(201),
        body=lambda s, role: {"json": {"kind": "need", "title": "Matrice", "category": "apprendre", "minutes": 30}}),
    Row("GET", f"{P}/posts/{{post_id}}", SEE_MEMBERS, url=f"{P}/posts/{{ex_members_post}}",
        hidden={"ex_members_title": OURS_SEE}, shown=True),
    Row("PATCH", f"{P}/posts/{{post_id}}", rule(403, anonymous=401, steward=200, outsider=404),
        url=f"{P}/posts/{{ex_members_post}}", body=lambda s, role: {"json": {"title": "Matrice modifiée"}}),
    # Replying: not to one's own post (422), not to a post one may not read (404). A public post is
    # answered across cooperatives along an accepted clearing line: tests/api/test_exchange_network.py.
    Row("POST", f"{P}/posts/{{post_id}}/replies", rule(201, anonymous=401, steward=422, outsider=404),
        url=f"{P}/posts/{{ex_members_post}}/replies", body=lambda s, role: {"json": {"message": "Bonjour"}}),
    Row("GET", f"{P}/exchanges", signed_in(200), body=lambda s, role: (proposed(s), {})[1],
        hidden={"ex_thread": PARTIES}, shown=True),
    Row("GET", f"{P}/exchanges/{{exchange_id}}", rule(404, anonymous=401, member=200, steward=200, coordinator=200),
        url=f"{P}/exchanges/{{ex_proposed}}", hidden={"ex_thread": ["member", "steward", "coordinator"]},
        shown=True),
    # The member opened it: the steward (the post's author) accepts.
    Row("POST", f"{P}/exchanges/{{exchange_id}}/accept",
        rule(404, anonymous=401, member=403, steward=200, coordinator=403),
        url=f"{P}/exchanges/{{ex_proposed}}/accept"),
    # On an accepted exchange: the provider records it done, the receiver confirms it (and pays).
    Row("POST", f"{P}/exchanges/{{exchange_id}}/done", PARTY_ACT, url=f"{P}/exchanges/{{ex_accepted}}/done"),
    Row("POST", f"{P}/exchanges/{{exchange_id}}/cancel", PARTY_ACT, url=f"{P}/exchanges/{{ex_proposed}}/cancel"),
    Row("POST", f"{P}/exchanges/{{exchange_id}}/dispute", PARTY_ACT, url=f"{P}/exchanges/{{ex_accepted}}/dispute"),
    # The receiver (the member) is not supported; the provider may not ask at all.
    Row("POST", f"{P}/exchanges/{{exchange_id}}/solidarity", rule(404, anonymous=401, member=403, steward=403,
                                                                  coordinator=403),
        url=f"{P}/exchanges/{{ex_accepted}}/solidarity"),
    Row("POST", f"{P}/exchanges/{{exchange_id}}/messages", rule(404, anonymous=401, member=201, steward=201,
                                                                coordinator=403),
        url=f"{P}/exchanges/{{ex_proposed}}/messages", body=lambda s, role: {"json": {"body": "Matrice"}}),
    Row("GET", f"{P}/solidarity", signed_in(200)),
    Row("POST", f"{P}/solidarity/gifts", signed_in(201),
        body=lambda s, role: {"json": {"minutes": 10, "idempotency_key": f"matrice-{role}"}}),
    # The member persona is not in the outsider's cooperative: refused naming member_id.
    Row("POST", f"{P}/solidarity/stewards", coordinators(201, outsider=422),
        body=lambda s, role: {"json": {"member_id": s.people.member.id}}),
    Row("POST", f"{P}/solidarity/supports", rule(403, anonymous=401, steward=201, coordinator=201),
        body=_propose_body),
    # Proposed by the coordinator: the other fund steward approves; the proposer may not (four eyes).
    Row("POST", f"{P}/solidarity/supports/{{support_id}}/approve",
        rule(403, anonymous=401, steward=200, coordinator=422), url=f"{P}/solidarity/supports/{{ex_support}}/approve"),
    # Ending: one fund steward is enough (the proposer too); to anyone else the support is not there.
    Row("POST", f"{P}/solidarity/supports/{{support_id}}/end",
        rule(404, anonymous=401, steward=200, coordinator=200), url=f"{P}/solidarity/supports/{{ex_support}}/end",
        body=lambda s, role: {"json": {"reason": "matrice"}}),
    Row("GET", f"{P}/figures", signed_in(200)),
]

# --- the members' pages (/app/exchange), signed in through the real form
A = "/app/exchange"


def _page_propose_form(s: Subjects, role: str) -> dict[str, Any]:
    return {"data": {"member_id": str(_propose_body(s, role)["json"]["member_id"]), "note": "matrice"}}


def _support_listed(s: Subjects, role: str) -> dict[str, Any]:
    support(s)
    return {}


def _page_post_form(s: Subjects, role: str) -> dict[str, Any]:
    return {"data": {"kind": "need", "title": "Matrice page", "category": "apprendre", "minutes": "30",
                     "visibility": "members"}}


ROWS += [
    Row("GET", A, rule(200, anonymous=303), page=True),
    Row("GET", f"{A}/new", rule(200, anonymous=303), page=True),
    Row("POST", f"{A}/new", every(303), page=True, body=_page_post_form),
    Row("GET", f"{A}/posts/{{post_id}}", rule(200, anonymous=303, outsider=404), url=f"{A}/posts/{{ex_members_post}}",
        page=True, hidden={"ex_members_title": OURS_SEE}, shown=True),
    Row("POST", f"{A}/posts/{{post_id}}/reply", rule(303, steward=422, outsider=404), page=True,
        url=f"{A}/posts/{{ex_members_post}}/reply", body=lambda s, role: {"data": {"minutes": "20"}}),
    Row("GET", f"{A}/mine", rule(200, anonymous=303), page=True),
    Row("GET", f"{A}/exchanges/{{exchange_id}}", rule(404, anonymous=303, member=200, steward=200, coordinator=200),
        url=f"{A}/exchanges/{{ex_proposed}}", page=True, hidden={"ex_thread": ["member", "steward", "coordinator"]},
        shown=True),
    Row("POST", f"{A}/exchanges/{{exchange_id}}/messages",
        rule(404, anonymous=303, member=303, steward=303, coordinator=403), page=True,
        url=f"{A}/exchanges/{{ex_proposed}}/messages", body=lambda s, role: {"data": {"body": "Matrice"}}),
    Row("POST", f"{A}/exchanges/{{exchange_id}}/dispute",
        rule(404, anonymous=303, member=303, steward=303, coordinator=403), page=True,
        url=f"{A}/exchanges/{{ex_accepted}}/dispute", body=lambda s, role: {"data": {"reason": "Matrice"}}),
    # The supported member's name and the stewards' note: the fund's stewards only.
    Row("GET", f"{A}/solidarity", rule(200, anonymous=303), page=True, body=_support_listed,
        hidden={"ex_support_note": ["steward", "coordinator"]}, shown=True),
    Row("POST", f"{A}/solidarity/gifts", every(303), page=True,
        body=lambda s, role: {"data": {"minutes": "10", "idempotency_key": f"matrice-page-{role}"}}),
    Row("POST", f"{A}/solidarity/supports", rule(403, anonymous=303, steward=303, coordinator=303), page=True,
        body=_page_propose_form),
    # Proposed by the coordinator: the other steward approves; the proposer is told why not (four eyes).
    Row("POST", f"{A}/solidarity/supports/{{support_id}}/approve",
        rule(403, anonymous=303, steward=303, coordinator=409), page=True,
        url=f"{A}/solidarity/supports/{{ex_support}}/approve"),
    Row("POST", f"{A}/solidarity/supports/{{support_id}}/end",
        rule(404, anonymous=303, steward=303, coordinator=303), page=True,
        url=f"{A}/solidarity/supports/{{ex_support}}/end", body=lambda s, role: {"data": {"reason-0": ""}}),
    Row("POST", f"{A}/exchanges/{{exchange_id}}/{{action}}",
        rule(404, anonymous=303, member=403, steward=303, coordinator=403), page=True,
        url=f"{A}/exchanges/{{ex_proposed}}/accept"),
]
