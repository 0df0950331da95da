"""Contract tests of ``/api/v1``: tokens and scopes, problem details, idempotency,
pagination, limits, and the clinic's day through the API (create a client, book,
submit answers, read signals, acknowledge the alert)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import Administration
from outcome.models import ApiIdempotencyRecord
from outcome.models import ApiToken
from outcome.models import AuditDenialCount
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.services.api_tokens import delete_old_idempotency_records
from tests.conftest import ApiClient

PHQ_SEVERE = {f"phq9_{i}": 2 for i in range(1, 10)}  # 18, item 9 answered: critical
PROBLEM = "application/problem+json"


def count(db_session, model, *where) -> int:
    return db_session.scalar(select(func.count()).select_from(model).where(*where))


def assert_problem(response, status: int, *pointers: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["type"].startswith("urn:outcome:problem:")
    assert body["detail"] and body["instance"] == response.request.path
    found = {e.get("pointer") or e.get("parameter") for e in body.get("errors", [])}
    assert set(pointers) <= found, body
    return body


@pytest.fixture
def therapist(make_user):
    return make_user()


@pytest.fixture
def t_api(api, therapist) -> ApiClient:
    return api(therapist)


def new_client(t_api: ApiClient, **fields) -> dict:
    response = t_api.post("/api/v1/clients", json={"name": "Robin Example", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- the day through the API -------------------------------------------------------------


def test_create_book_submit_read_signals_and_acknowledge(t_api, db_session, clock):
    created = new_client(t_api, email="robin@example.org", opened_on="2026-11-02")
    code = created["code"]
    assert created["name"] == "Robin Example" and created["open_episode_id"]
    booked = t_api.post(f"/api/v1/clients/{code}/appointments",
                        json={"starts_at": "2026-11-16T10:00:00+01:00"})
    assert booked.status_code == 201
    appointment = booked.get_json()
    assert appointment["starts_at"] == "2026-11-16T09:00:00Z"
    assert appointment["session_number"] == 1
    submitted = t_api.post(f"/api/v1/clients/{code}/administrations", json={
        "instrument": "phq9", "answers": PHQ_SEVERE, "appointment_id": appointment["id"],
        "completed_at": "2026-11-16T08:50:00Z"})
    assert submitted.status_code == 201, submitted.get_json()
    stored = submitted.get_json()
    assert stored["administration"]["total"] == 18
    assert stored["administration"]["band"] == "moderately severe"
    assert stored["administration"]["critical_items"] == ["phq9_9"]
    assert stored["signals"]["urgency"] == 0  # an unacknowledged critical answer
    signals = t_api.get(f"/api/v1/clients/{code}/signals").get_json()
    assert signals == stored["signals"]
    alerts = t_api.get("/api/v1/alerts").get_json()["items"]
    assert [(a["client_code"], a["kind"], a["status"]) for a in alerts] == [
        (code, "critical_item", "open")]
    # Explanations come as message id and parameters, with their English text.
    assert alerts[0]["explanation"]["message"] == "critical.answer_labelled"
    assert alerts[0]["explanation"]["params"]["answer"] == 2
    assert alerts[0]["message"] == alerts[0]["explanation"]["text"]
    assert alerts[0]["message"].endswith("Answer: 2 (More than half the days).")
    critical = signals["critical"][0]
    assert critical["message"] == "critical.answer_labelled" and critical["text"] == \
        alerts[0]["message"] and critical["numbers"]["observed"] == 2
    progress = signals["outcomes"]["phq9"]["progress"]
    assert progress["message"] == "progress.explanation" and progress["text"].startswith(
        "Grey: PHQ-9 18 at session 1: first measure of this episode")
    path = f"/api/v1/clients/{code}/alerts/{alerts[0]['id']}/acknowledge"
    assert_problem(t_api.post(path, json={"note": ""}), 422, "#/note")
    done = t_api.post(path, json={"note": "Phoned today; safety plan agreed."})
    assert done.status_code == 200 and done.get_json()["status"] == "acknowledged"
    assert done.get_json()["note"] == "Phoned today; safety plan agreed."
    assert_problem(t_api.post(path, json={"note": "again"}), 409)
    assert t_api.get("/api/v1/alerts").get_json()["items"] == []
    assert t_api.get(f"/api/v1/clients/{code}/signals").get_json()["urgency"] > 0
    listed = t_api.get(f"/api/v1/clients/{code}/administrations").get_json()["items"]
    assert [a["answers"] for a in listed] == [PHQ_SEVERE]


def test_episodes_open_close_and_reopen(t_api):
    code = new_client(t_api, opened_on="2026-09-01")["code"]
    episodes = t_api.get(f"/api/v1/clients/{code}/episodes").get_json()["items"]
    assert len(episodes) == 1 and episodes[0]["is_open"]
    conflict = t_api.post(f"/api/v1/clients/{code}/episodes", json={})
    assert_problem(conflict, 409, "#/opened_on")
    close = f"/api/v1/clients/{code}/episodes/{episodes[0]['id']}/close"
    assert_problem(t_api.post(close, json={"end_reason": "finished"}), 422, "#/end_reason")
    assert_problem(t_api.post(close, json={"end_reason": "completed",
                                           "closed_on": "2026-08-01"}), 422, "#/closed_on")
    closed = t_api.post(close, json={"end_reason": "completed", "closed_on": "2026-11-01"})
    assert closed.status_code == 200 and closed.get_json()["end_reason"] == "completed"
    assert t_api.get(f"/api/v1/clients/{code}").get_json()["open_episode_id"] is None
    booking = t_api.post(f"/api/v1/clients/{code}/appointments",
                         json={"starts_at": "2026-11-20T10:00:00Z"})
    assert_problem(booking, 409)
    reopened = t_api.post(f"/api/v1/clients/{code}/episodes", json={"opened_on": "2026-11-10"})
    assert reopened.status_code == 201
    assert t_api.get(f"/api/v1/clients/{code}").get_json()["open_episode_id"] == \
        reopened.get_json()["id"]


# --- problem details -----------------------------------------------------------------------


def test_invalid_answers_name_each_item_and_store_nothing(t_api, db_session):
    code = new_client(t_api)["code"]
    answers = {**PHQ_SEVERE, "phq9_3": 7, "phq9_4": "often", "phq9_99": 1}
    response = t_api.post(f"/api/v1/clients/{code}/administrations",
                          json={"instrument": "phq9", "answers": answers})
    body = assert_problem(response, 422, "#/answers/phq9_3", "#/answers/phq9_4",
                          "#/answers/phq9_99")
    codes = {e["pointer"]: e["code"] for e in body["errors"]}
    assert codes["#/answers/phq9_3"] == "not_an_option"
    assert codes["#/answers/phq9_99"] == "unknown_item"
    assert count(db_session, Administration) == 0


@pytest.mark.parametrize(("body", "pointer"), [
    ({"answers": {}}, "#/instrument"),
    ({"instrument": "phq9"}, "#/answers"),
    ({"instrument": "no-such", "answers": {}}, "#/instrument"),
    ({"instrument": "phq9", "version": "99", "answers": {}}, "#/version"),
    ({"instrument": "phq9", "answers": [1, 2]}, "#/answers"),
    ({"instrument": "phq9", "answers": PHQ_SEVERE, "colour": "red"}, "#/colour"),
    ({"instrument": "phq9", "answers": PHQ_SEVERE, "completed_at": "yesterday"},
     "#/completed_at"),
    ({"instrument": "phq9", "answers": PHQ_SEVERE, "completed_at": "2026-11-16T09:00:00"},
     "#/completed_at"),
    ({"instrument": "phq9", "answers": PHQ_SEVERE, "completed_at": "2027-01-01T00:00:00Z"},
     "#/completed_at"),
    ({"instrument": "phq9", "answers": PHQ_SEVERE, "appointment_id": 999999},
     "#/appointment_id"),
])
def test_a_wrong_field_is_named(t_api, db_session, body, pointer):
    code = new_client(t_api)["code"]
    response = t_api.post(f"/api/v1/clients/{code}/administrations", json=body)
    assert_problem(response, 422, pointer)
    assert count(db_session, Administration) == 0


def test_missing_and_extra_client_fields(t_api, db_session):
    before = count(db_session, Client)
    assert_problem(t_api.post("/api/v1/clients", json={}), 422, "#/name")
    assert_problem(t_api.post("/api/v1/clients", json={"name": "A", "email": "not-mail"}),
                   422, "#/email")
    assert_problem(t_api.post("/api/v1/clients", json={"name": "A", "locale": "fr"}), 422,
                   "#/locale")
    assert_problem(t_api.post("/api/v1/clients", json={"name": "A", "is_admin": True}), 422,
                   "#/is_admin")
    assert count(db_session, Client) == before


def test_bodies_that_are_not_json(t_api, client):
    headers = {"Authorization": f"Bearer {t_api.secret}"}
    body = assert_problem(client.post("/api/v1/clients", data='{"name": ', headers={
        **headers, "Content-Type": "application/json"}), 400)
    assert "line 1" in body["detail"]
    assert_problem(client.post("/api/v1/clients", data="name=x", headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_problem(client.post("/api/v1/clients", data=b"\xff\xfe", headers={
        **headers, "Content-Type": "application/json"}), 400)


def test_request_size_is_limited(t_api, client, app):
    limit = app.config["API_MAX_BODY_BYTES"]
    huge = '{"name": "' + "x" * limit + '"}'
    response = client.post("/api/v1/clients", data=huge, headers={
        "Authorization": f"Bearer {t_api.secret}", "Content-Type": "application/json"})
    assert_problem(response, 413)


def test_unknown_paths_and_methods_are_problems(t_api):
    assert_problem(t_api.get("/api/v1/patients"), 404)
    response = t_api._client.delete("/api/v1/clients", headers={
        "Authorization": f"Bearer {t_api.secret}"})
    body = assert_problem(response, 405)
    assert "DELETE" in body["detail"]
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


# --- tokens and scopes -----------------------------------------------------------------------


def test_no_token_or_a_bad_one_is_401_and_denials_are_audited(client, t_api, db_session):
    response = client.get("/api/v1/clients")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/api/v1/clients", headers={"Authorization": "Bearer oc_not-a-token"})
    assert_problem(bad, 401)
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    # Nobody's token: counted per address and minute (issue 16), not an event each.
    assert db_session.scalar(select(AuditDenialCount.count).where(
        AuditDenialCount.action == "api.authenticate")) == 1
    assert count(db_session, AuditEvent, AuditEvent.action == "api.authenticate") == 0
    # Cookies are not a credential: a signed-in therapist's browser gets 401 too.
    assert_problem(client.get("/api/v1/clients", headers={"Authorization": "Basic eDp5"}),
                   401)


def test_expired_revoked_and_disabled_tokens_stop_working(api, make_user, db_session, clock):
    therapist = make_user()
    for what in ("expired", "revoked", "disabled"):
        t_api = api(therapist)
        assert t_api.get("/api/v1/clients").status_code == 200
        token = db_session.scalar(select(ApiToken).order_by(ApiToken.id.desc()))
        if what == "expired":
            clock.advance(days=91)
        elif what == "revoked":
            token.revoked_dt = clock()
        else:
            therapist.is_active = False
        db_session.commit()
        assert_problem(t_api.get("/api/v1/clients"), 401)
        therapist.is_active = True
        db_session.commit()


def test_scopes(api, therapist):
    reader = api(therapist, scopes=("read",))
    assert reader.get("/api/v1/clients").status_code == 200
    response = reader.post("/api/v1/clients", json={"name": "Robin"})
    body = assert_problem(response, 403)
    assert body["type"].endswith("insufficient-scope")
    assert 'scope="write"' in response.headers["WWW-Authenticate"]
    writer = api(therapist, scopes=("write",))
    assert writer.post("/api/v1/clients", json={"name": "Robin"}).status_code == 201
    assert_problem(writer.get("/api/v1/clients"), 403)


def test_requests_are_audited_as_the_token(t_api, db_session):
    code = new_client(t_api)["code"]
    t_api.get(f"/api/v1/clients/{code}")
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "api.client.view"))
    token = db_session.scalar(select(ApiToken).order_by(ApiToken.id.desc()))
    assert event.actor_kind == "api_token" and event.actor_user_id == token.user_id
    # The token, its kind, who made it and whom it acts for (issue 16).
    assert event.actor_label == (f"token {token.id} personal by user {token.created_by_id} "
                                 f"for user {token.user_id} (EHR)")
    assert event.object_id == code and event.outcome == "allowed"
    created = db_session.scalar(select(AuditEvent).where(
        AuditEvent.action == "api.client.create"))
    assert created.client_id == db_session.scalar(select(Client.id).where(Client.code == code))


# --- idempotency -----------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_stored_result(t_api, db_session):
    headers = {"Idempotency-Key": "3f1c7d2e-client"}
    first = t_api.post("/api/v1/clients", json={"name": "Robin", "locale": "en"},
                       headers=headers)
    again = t_api.post("/api/v1/clients", json={"locale": "en", "name": "Robin"},
                       headers=headers)  # same JSON, other key order
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert count(db_session, Client) == 1


def test_the_same_key_with_another_body_or_path_is_409(t_api, db_session):
    headers = {"Idempotency-Key": "key-1"}
    code = t_api.post("/api/v1/clients", json={"name": "Robin"}, headers=headers
                      ).get_json()["code"]
    body = assert_problem(t_api.post("/api/v1/clients", json={"name": "Someone Else"},
                                     headers=headers), 409, "Idempotency-Key")
    assert body["type"].endswith("idempotency-key-reused")
    assert_problem(t_api.post(f"/api/v1/clients/{code}/appointments",
                              json={"starts_at": "2026-11-20T10:00:00Z"}, headers=headers), 409)
    assert count(db_session, Client) == 1


def test_a_failed_request_keeps_no_key_so_it_can_be_corrected(t_api, db_session):
    code = new_client(t_api)["code"]
    path = f"/api/v1/clients/{code}/administrations"
    headers = {"Idempotency-Key": "answers-1"}
    wrong = t_api.post(path, json={"instrument": "phq9", "answers": {"phq9_1": 9}},
                       headers=headers)
    assert wrong.status_code == 422
    right = t_api.post(path, json={"instrument": "phq9", "answers": PHQ_SEVERE},
                       headers=headers)
    assert right.status_code == 201
    replay = t_api.post(path, json={"instrument": "phq9", "answers": PHQ_SEVERE},
                        headers=headers)
    assert replay.get_json() == right.get_json()
    assert count(db_session, Administration) == 1


def test_keys_belong_to_one_token(api, therapist, db_session):
    one, two = api(therapist), api(therapist)
    headers = {"Idempotency-Key": "shared"}
    assert one.post("/api/v1/clients", json={"name": "A"}, headers=headers).status_code == 201
    assert two.post("/api/v1/clients", json={"name": "B"}, headers=headers).status_code == 201
    assert count(db_session, Client) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "naïve"])
def test_a_malformed_key_is_400(t_api, key, db_session):
    assert_problem(t_api.post("/api/v1/clients", json={"name": "A"},
                              headers={"Idempotency-Key": key}), 400, "Idempotency-Key")
    assert count(db_session, Client) == 0


def test_idempotency_records_are_forgotten_after_a_day(t_api, db_session, clock):
    t_api.post("/api/v1/clients", json={"name": "A"}, headers={"Idempotency-Key": "k"})
    assert delete_old_idempotency_records(db_session, clock()) == 0
    assert delete_old_idempotency_records(db_session, clock() + dt.timedelta(hours=25)) == 1
    assert count(db_session, ApiIdempotencyRecord) == 0


# --- pagination ------------------------------------------------------------------------------


def test_cursor_pagination_visits_every_client_once(t_api):
    codes = {new_client(t_api, name=f"Person {i}")["code"] for i in range(5)}
    seen, path, pages = [], "/api/v1/clients?limit=2", 0
    while path:
        response = t_api.get(path)
        body = response.get_json()
        pages += 1
        seen += [c["code"] for c in body["items"]]
        assert len(body["items"]) <= 2
        if body["next_cursor"]:
            link = response.headers["Link"]
            assert link.endswith('; rel="next"') and body["next_cursor"] in link
            path = link[1:link.index(">")]
        else:
            assert "Link" not in response.headers
            path = None
    assert pages == 3 and len(seen) == 5 and set(seen) == codes


@pytest.mark.parametrize(("query", "parameter"), [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
    ("cursor=not-a-cursor", "cursor"), ("cursor=v1--1", "cursor"),
])
def test_bad_paging_parameters_are_named(t_api, query, parameter):
    assert_problem(t_api.get(f"/api/v1/clients?{query}"), 400, parameter)


def test_alert_status_filter_is_checked(t_api):
    assert_problem(t_api.get("/api/v1/alerts?status=closed"), 400, "status")
    assert t_api.get("/api/v1/alerts?status=all").status_code == 200


# --- rate limits -----------------------------------------------------------------------------


def test_each_token_has_its_own_rate_limit(app, api, therapist):
    from outcome.extensions import limiter

    app.config.update(RATELIMIT_ENABLED=True, API_RATE_LIMIT="3 per minute")
    limiter.init_app(app)  # Flask-Limiter reads RATELIMIT_ENABLED at init
    try:
        limiter.reset()
        first, second = api(therapist), api(therapist)
        statuses = [first.get("/api/v1/instruments").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = first.get("/api/v1/instruments")
        assert_problem(limited, 429)
        assert int(limited.headers["Retry-After"]) > 0
        assert second.get("/api/v1/instruments").status_code == 200
    finally:
        limiter.reset()
        app.config.update(RATELIMIT_ENABLED=False)
        limiter.init_app(app)


# --- instruments -----------------------------------------------------------------------------


def test_instruments_list_and_detail(t_api):
    items = t_api.get("/api/v1/instruments").get_json()["items"]
    by_id = {i["id"]: i for i in items}
    assert by_id["phq9"]["status"] == "available" and by_id["phq9"]["score_range"] == [0, 27]
    assert by_id["k10"]["status"] == "needs attestation"
    phq = t_api.get("/api/v1/instruments/phq9").get_json()
    assert [i["id"] for i in phq["items"] if i["is_scored"]] == [
        f"phq9_{i}" for i in range(1, 10)]
    assert [i["is_scored"] for i in phq["items"] if i["id"] == "phq9_10"] == [False]
    assert phq["items"][0]["text"] == "Little interest or pleasure in doing things"
    assert phq["critical_items"] == ["phq9_9"] and phq["cutoff"] == 10
    assert_problem(t_api.get("/api/v1/instruments/no-such"), 404)
    unavailable = t_api.post(
        f"/api/v1/clients/{new_client(t_api)['code']}/administrations",
        json={"instrument": "k10", "answers": {}})
    body = assert_problem(unavailable, 422, "#/instrument")
    assert "needs attestation" in body["errors"][0]["detail"]
