"""Access-matrix rows of the partner maps: members read their cooperative's list, coordinators add,
refresh and remove (the outsider, a coordinator elsewhere, may add to its own cooperative but does
not find ours), and anyone reads a partner's cached layer."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.test_access_matrix import PUBLIC_LAYER, Row, Subjects, every, js, rule, signed_in

# Nothing listens on the loopback's port 9: past the permission check, adding it is refused (422)
# at once, without any outside call; refreshing it records the partner as unavailable (200).
DOWN = "http://127.0.0.1:9/ogc"


def _partner(s: Subjects) -> int:
    """A partner of the demo cooperative with one cached layer (made in the test's transaction)."""
    from commons_map.partners.models import Partner, PartnerLayer

    p = Partner(cooperative_id=s.people.coop.id, url=DOWN, name="Partenaire matrice", licence="CC0-1.0",
                link=DOWN, status="ok", fetched_at=datetime.now(UTC))
    s.db.add(p)
    s.db.flush()
    s.db.add(PartnerLayer(partner_id=p.id, collection_id="vergers", position=0, title="Vergers", licence="CC0-1.0",
                          feature_count=0, skipped=0, truncated=False, fetched_at=datetime.now(UTC),
                          geojson=b'{"type":"FeatureCollection","features":[]}'))
    s.db.flush()
    return p.id


SUBJECTS = {"partner": _partner}

ROWS = [
    Row("GET", "/api/v1/partners", signed_in(200)),
    Row("POST", "/api/v1/partners", rule(403, anonymous=401, coordinator=422, outsider=422), body=js(url=DOWN)),
    Row("DELETE", "/api/v1/partners/{partner_id}", rule(403, anonymous=401, coordinator=204, outsider=404),
        url="/api/v1/partners/{partner}"),
    Row("POST", "/api/v1/partners/{partner_id}/refresh", rule(403, anonymous=401, coordinator=200, outsider=404),
        url="/api/v1/partners/{partner}/refresh"),
    Row("GET", "/maps/partners/{partner_id}/{collection}.geojson", every(200),
        url="/maps/partners/{partner}/vergers.geojson", hidden=PUBLIC_LAYER),
]
