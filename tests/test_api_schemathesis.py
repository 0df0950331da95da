"""Schemathesis against the OpenAPI document, in process: every operation of ``/api/v1``
and ``/fhir`` with generated input must answer without a server error, with a status the
document lists for it, and with a body and headers that match its schemas.

Every default check runs but one: "schema-valid data is accepted" cannot hold for an
API with clinical rules past its schema (an appointment that clashes, a PHQ-9 answer of
7 on a 0-3 item, an episode opened while one is open): those are 409s and 422s that
name the field, by design. Server errors, undocumented statuses, wrong content types,
bodies that break the schemas, schema-violating input accepted, and ignored auth all
fail the test.

Half the generated cases are sent with a real client's code and real ids in the path,
so generation also reaches the views behind a found client, not only their 404s. The
world lives in a database of its own (the module's), since generated POSTs really write.
"""

from __future__ import annotations

import datetime as dt
import secrets
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.transport.wsgi import WSGI_TRANSPORT
from sqlalchemy.orm import sessionmaker

from outcome import schema as db_schema
from outcome.core.answers import parse_answers
from outcome.db import make_engine
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import ApiToken
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupervisionReview
from outcome.models import SupportCheck
from outcome.models import User
from outcome.services.api_tokens import SECRET_PREFIX
from outcome.services.api_tokens import hash_secret
from outcome.services.client_codes import allocate_client_code
from outcome.services.submissions import submit_administration
from outcome.web.api.openapi import document
from questionnaires.loader import builtin_library

EXAMPLES_PER_OPERATION = 60


class World:
    def __init__(self, app, secret: str, code: str, ids: dict[str, int]) -> None:
        self.app, self.secret, self.code, self.ids = app, secret, code, ids


@pytest.fixture(scope="module")
def world(databases, tmp_path_factory, app_factory):
    url = databases.new_url()
    engine = make_engine(url)
    db_schema.upgrade(engine)
    library = builtin_library()
    phq = library.get("phq9")
    now = dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC)
    with sessionmaker(bind=engine, expire_on_commit=False)() as store:
        clinic = Clinic(slug="fuzz", name="Fuzz Clinic")
        store.add(clinic)
        store.flush()
        admin = User(clinic_id=clinic.id, email="admin@fuzz.example", display_name="Admin",
                     is_admin=True)
        therapist = User(clinic_id=clinic.id, email="t@fuzz.example", display_name="T",
                         is_therapist=True)
        store.add_all([admin, therapist])
        store.flush()
        client = Client(clinic_id=clinic.id, code=allocate_client_code(store),
                        name="Fuzz Person", therapist_id=therapist.id)
        store.add(client)
        store.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id,
                          therapist_id=therapist.id, opened_on=dt.date(2026, 9, 1))
        store.add(episode)
        store.flush()
        appointment = Appointment(episode_id=episode.id, starts_dt=now)
        store.add(appointment)
        answers = parse_answers(phq, {f"phq9_{i}": 2 for i in range(1, 10)})
        submit_administration(store, episode=episode, instrument=phq, answers=answers,
                              completed_dt=now, idempotency_key="fuzz-1", library=library,
                              now=now)
        alert = store.query(Alert).filter_by(episode_id=episode.id).first()
        store.add(ApiToken(clinic_id=clinic.id, user_id=therapist.id, kind="personal", name="fuzz",
                           token_hash=hash_secret(SECRET), prefix=SECRET[:10],
                           scopes=["read", "write"], created_by_id=therapist.id, created_dt=now,
                           expires_dt=now + dt.timedelta(days=3650)))
        ids = {"episode_id": episode.id, "alert_id": alert.id,
               "appointment_id": appointment.id,
               **issue19_api_world(store, episode, therapist, now)}
        code = client.code
        store.commit()
    app = app_factory(url, instance_path=tmp_path_factory.mktemp("instance"))
    yield World(app, SECRET, code, ids)
    engine.dispose()


def issue19_api_world(store, episode, therapist, now) -> dict[str, int]:
    """issue 19: api. A closed plan and the open one that revised it (after an answered
    support check), and a supervisor's review of it, so that generated requests reach
    every field of a plan and a review."""
    supervisor = User(clinic_id=episode.clinic_id, email="s@fuzz.example", display_name="S",
                      is_supervisor=True)
    store.add(supervisor)
    store.flush()
    check = SupportCheck(episode_id=episode.id, reason="red", started_by_id=therapist.id,
                         started_dt=now, status="answered", answered_dt=now)
    store.add(check)
    store.flush()
    steps = [{"domain": "alliance", "suggestion": "alliance.metacommunication",
              "text": "Talk about the relationship", "decision": "accepted"}]
    first = ActionPlan(episode_id=episode.id, created_by_id=therapist.id, created_dt=now,
                       steps=steps, note="n", review_on=dt.date(2026, 12, 1),
                       baseline={"instrument": "phq9", "score": 18, "colour": "red"},
                       status="revised", closed_dt=now, closed_by_id=therapist.id,
                       outcome={"colour_now": "red"})
    store.add(first)
    store.flush()
    plan = ActionPlan(episode_id=episode.id, created_by_id=therapist.id, created_dt=now,
                      steps=steps, note="n", review_on=dt.date(2026, 12, 14),
                      support_check_id=check.id, revised_from_id=first.id)
    store.add(plan)
    store.flush()
    store.add(SupervisionReview(episode_id=episode.id, plan_id=plan.id,
                                supervisor_id=supervisor.id, reviewed_dt=now,
                                follow_up_on=dt.date(2026, 12, 21), note="r"))
    return {"plan_id": plan.id}


# Loaded from the document itself (what /api/v1/openapi.json serves); the app it calls,
# in process, is the module's (schemathesis' lazy fixture loader does not run on pytest 9).
schema = schemathesis.openapi.from_dict(document())
# Known before collection (schemathesis asks for auth while it collects); the module's
# world stores its hash as a token of the world's therapist.
SECRET = SECRET_PREFIX + secrets.token_urlsafe(32)


@schema.auth()
class BearerToken:
    """The module's token, so that schemathesis' own auth checks know what to leave out."""

    def get(self, case, context):
        return SECRET

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case, world):
    # Deterministic per case: half get real objects in the path.
    if zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode()) % 2:
        parameters = dict(case.path_parameters or {})
        if "code" in parameters:
            parameters["code"] = world.code
        for name in ("episode_id", "alert_id", "plan_id"):
            if name in parameters:
                parameters[name] = world.ids[name]
        case.path_parameters = parameters
        if case.query and "plan_id" in case.query:  # issue 19: api
            case.query = {**case.query, "plan_id": world.ids["plan_id"]}
        if case.query and "subject" in case.query:
            case.query = {**case.query, "subject": f"Patient/{world.code}"}
    # The checks that send again (without auth, with other methods) reach the app too.
    case.operation.schema.app = world.app
    response = WSGI_TRANSPORT.send(case, app=world.app)
    case.validate_response(response, transport_kwargs={"app": world.app},
                           excluded_checks=[positive_data_acceptance])
