"""Access-matrix rows of the clearing lines between cooperatives. The demo has an accepted line
Saillans–Diois and a line Crest proposed to the Diois; the outsider persona is a coordinator of the
Diois, so it is the other side of both."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.test_access_matrix import Row, Subjects, js, rule


def _line(s: Subjects, state: str) -> int:
    from commons_map.clearing.models import ClearingLine

    return s.db.scalars(select(ClearingLine.id).where(ClearingLine.state == state).order_by(ClearingLine.id)).first()


SUBJECTS = {"accepted_line": lambda s: _line(s, "accepted"), "proposed_line": lambda s: _line(s, "proposed")}

ROWS = [
    Row("GET", "/api/v1/clearing/lines", rule(200, anonymous=401)),
    # Saillans' coordinator proposes to Crest; the Diois' one finds Crest's line already there.
    Row("POST", "/api/v1/clearing/lines", rule(403, anonymous=401, coordinator=201, outsider=409),
        body=js(partner="cic-crest", limit_minutes=600)),
    # Crest's proposal to the Diois: only the Diois accepts it; Saillans does not even see it.
    Row("POST", "/api/v1/clearing/lines/{line_id}/accept", rule(403, anonymous=401, coordinator=404, outsider=200),
        url="/api/v1/clearing/lines/{proposed_line}/accept"),
    Row("PUT", "/api/v1/clearing/lines/{line_id}/limit", rule(403, anonymous=401, coordinator=200, outsider=200),
        url="/api/v1/clearing/lines/{accepted_line}/limit", body=js(limit_minutes=600)),
]
