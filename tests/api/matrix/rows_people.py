"""Access-matrix rows of the role changes (four eyes on the coordinator role) and of adding kinds:
coordinators only; a role change of our cooperative is approved or declined by our coordinators
(the outsider, a coordinator elsewhere, does not find it); kinds are added by any cooperative's
coordinators for their own cooperative."""

from __future__ import annotations

from tests.api.test_access_matrix import Row, Subjects, js, rule, signed_in


def _role_change(s: Subjects) -> int:
    """A pending grant of the coordinator role to the member persona, asked by another coordinator
    of the demo cooperative (yasmine), so the coordinator persona may approve it."""
    from sqlalchemy import select

    from commons_map.people.models import Member
    from commons_map.people.service import request_role_change

    yasmine = s.db.scalars(select(Member).where(Member.username == "yasmine")).one()
    change = request_role_change(s.db, actor=yasmine, member=s.people.member, role="coordinator", action="grant")
    s.db.flush()
    return change.id


SUBJECTS = {"role_change": _role_change}

NOT_OURS = {403, 404}  # the outsider: a coordinator, of another cooperative

ROWS = [
    Row("POST", "/api/v1/members/{member_id}/roles", signed_in(403, coordinator=201, outsider=404),
        url="/api/v1/members/{member_id}/roles", body=js(action="grant")),
    Row("GET", "/api/v1/members/role-changes", rule(403, anonymous=401, coordinator=200, outsider=200)),
    Row("POST", "/api/v1/members/role-changes/{change_id}/approve",
        rule(403, anonymous=401, coordinator=200, outsider=NOT_OURS),
        url="/api/v1/members/role-changes/{role_change}/approve"),
    Row("POST", "/api/v1/members/role-changes/{change_id}/decline",
        rule(403, anonymous=401, coordinator=200, outsider=NOT_OURS),
        url="/api/v1/members/role-changes/{role_change}/decline"),
    Row("POST", "/app/role-changes/{change_id}/{decision}",
        rule(403, anonymous=303, coordinator=303, outsider=NOT_OURS),
        url="/app/role-changes/{role_change}/approve", page=True),
    Row("POST", "/api/v1/kinds", rule(403, anonymous=401, coordinator=201, outsider=201),
        body=lambda s, role: {"json": {"code": f"matrice_{role}", "label_fr": "Four", "label_en": "Oven",
                                       "category": "place", "geometry": "point"}}),
]
