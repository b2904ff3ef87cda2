"""Property-based fuzzing of the whole HTTP API from its own /openapi.json (schemathesis).

Every operation of the document is called anonymously and as each persona of the access matrix,
with valid and invalid data generated from the schema (derandomized: the same cases every run).
Each answer must not be a 5xx, must carry a documented status and media type, must match the
documented schema, and invalid input must be refused with a 4xx. The error responses are
documented by ``api/openapi.py`` (problem+json, or OpenRosa's XML envelope) rather than by
loosening these checks.

The app runs in process. Every request runs in a savepoint of the test's transaction (released or
rolled back like the real per-request unit of work), and the whole transaction is rolled back after
each role, so the shared demo cooperative is never changed.

Budget (2 cores): the coverage phase (schemathesis' deterministic boundary and negative values)
runs for the two ends of the permission scale, anonymous (refused early) and the coordinator
(allowed furthest into the services); every role gets the explicit examples and
``MAX_EXAMPLES`` generated cases per operation.

Operations excluded from particular checks, and why: none. Paths whose answers are not JSON
(tiles, XML, HTML, CSV, PNG, iCalendar) are described with their real media types in the document
and checked like the others.

What the fuzzing found is fixed and kept as plain regression tests beside each feature's tests:
ids beyond PostgreSQL's integer range answered 500 (tests/api/test_commons.py, now 422 from
api/errors.py), and ``/api/v1/soil/harvests?year=0`` crashed in date() (tests/api/test_soil_api.py,
now a 422 from the soil service).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

ROLES = ["anonymous", "member", "steward", "other_steward", "coordinator", "outsider"]
COVERAGE_ROLES = {"anonymous", "coordinator"}
MAX_EXAMPLES = 12

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis' lazy loader reads ``node._nodeid`` (gone in pytest 9): give it the node id."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(autouse=True)
def _forget_sign_in_failures(engine):  # noqa: ANN001
    """The fuzzer fails to sign in many times from one address, and the throttle makes that address wait:
    forget those failures after it, so that the tests after it sign in at once (failures are committed)."""
    yield
    from sqlalchemy import delete

    from commons_map.people.throttle import LoginFailure

    with engine.begin() as conn:
        conn.execute(delete(LoginFailure))


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    """Who calls: anonymous, or one of the personas."""
    return request.param


@pytest.fixture
def credentials(role, people, auth, db):
    """The role's bearer header, and its field token and calendar token (for the paths that take one)."""
    from commons_map.fieldforms.service import issue_token
    from commons_map.reservations.service import rotate_calendar_token

    member = people.by_role(role)
    if member is None:
        return {}, {}
    field_token, _ = issue_token(db, actor=member, member=member, label="fuzz")
    calendar_token = rotate_calendar_token(db, actor=member)
    db.flush()
    paths = {"/openrosa/key/{token}": field_token, "/api/v1/calendars/{token}": calendar_token}
    return auth(member), paths


@pytest.fixture
def fuzz_app(app, db: Session, client):
    """The test app, each request in its own savepoint: released on success, rolled back on error.

    The `client` fixture has run the app's lifespan (engine and sessionmaker on app.state).
    """
    from api.deps import get_session

    def per_request() -> Iterator[Session]:
        try:
            yield db
            db.commit()  # releases this request's savepoint; the test's transaction stays open
        except BaseException:
            db.rollback()  # back to the savepoint: a failed request leaves nothing behind
            raise

    app.dependency_overrides[get_session] = per_request
    return app


@pytest.fixture
def api_schema(fuzz_app, role):
    """The app's own OpenAPI document, loaded from the running app."""
    config = SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"enabled": role in COVERAGE_ROLES}}}
    )
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_api_fuzz(case, credentials):
    headers, path_tokens = credentials
    for prefix, token in path_tokens.items():
        # The paths that authenticate by a token in the URL get the role's real token (generated
        # values for the other parameters), so they are fuzzed past the sign-in too.
        if case.operation.path.startswith(prefix) and "token" in (case.path_parameters or {}):
            case.path_parameters["token"] = token
    case.call_and_validate(headers=headers, checks=CHECKS)
