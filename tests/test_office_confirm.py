"""Destructive actions ask for confirmation (issue 17): revoking a token, withdrawing a
client's unused links or a licence attestation, disabling an account and transferring a
client. Each form carries a required confirmation box that says what will happen; a POST
without it is a 400 that says why, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from outcome.models import ApiToken
from outcome.models import InstrumentAttestation
from outcome.models import QuestionnaireLink
from outcome.services import api_tokens
from outcome.services import instruments
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

REFUSAL = "tick the box that confirms what will happen"


@pytest.fixture
def world(db_session, clinic, make_user, make_client, make_episode, clock):
    admin = make_user("admin")
    therapist = make_user("therapist")
    other = make_user("therapist")
    person = make_client(therapist)
    episode = make_episode(person)
    admin_token, _ = api_tokens.create_token(db_session, user=admin, created_by=admin,
                                             name="Sync", scopes=["read"], now=clock(),
                                             kind="integration")
    own_token, _ = api_tokens.create_token(db_session, user=therapist, created_by=therapist,
                                           name="Mine", scopes=["read"], now=clock())
    issue_link(db_session, episode=episode, purpose="pre", now=clock(),
               library=builtin_library())
    instruments.attest(db_session, clinic=clinic, instrument=builtin_library().get("k10"),
                       admin=admin, now=clock())
    db_session.commit()
    return {"admin": admin, "therapist": therapist, "other": other, "client": person,
            "admin_token": admin_token, "own_token": own_token}


def _state(db_session, world) -> tuple:
    db_session.expire_all()
    return (world["therapist"].is_active, world["client"].therapist_id,
            db_session.get(ApiToken, world["admin_token"].id).revoked_dt,
            db_session.get(ApiToken, world["own_token"].id).revoked_dt,
            db_session.scalars(select(QuestionnaireLink.revoked_dt)).all(),
            db_session.scalar(select(InstrumentAttestation.revoked_dt)))


def _post(client, page: str, url: str, **data):
    html = client.get(page).get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_token(html), **data})


def test_admin_forms_have_a_required_confirmation_box(auth, client, world):
    auth.login(world["admin"].email)
    for page, action in (
            (f"/admin/users/{world['therapist'].id}", "disable"),
            ("/admin/clients", "transfer"),
            ("/admin/tokens", "revoke"),
            ("/admin/instruments", "revoke")):
        html = client.get(page).get_data(as_text=True)
        assert 'name="confirm" value="yes" required' in html, (page, action)


def test_admin_actions_without_confirmation_are_refused(auth, client, db_session, world):
    before = _state(db_session, world)
    auth.login(world["admin"].email)
    for page, url, data in (
            (f"/admin/users/{world['therapist'].id}",
             f"/admin/users/{world['therapist'].id}/disable", {}),
            ("/admin/clients", f"/admin/clients/{world['client'].code}/transfer",
             {"therapist_id": str(world["other"].id)}),
            ("/admin/tokens", f"/admin/tokens/{world['admin_token'].id}/revoke", {}),
            ("/admin/instruments", "/admin/instruments/k10/revoke", {}),
            ("/admin/instruments", "/admin/instruments/k10/revoke", {"confirm": "no"})):
        response = _post(client, page, url, **data)
        assert response.status_code == 400, url
        assert REFUSAL in response.get_data(as_text=True)
    assert _state(db_session, world) == before


def test_admin_actions_with_confirmation_happen(auth, client, db_session, world):
    auth.login(world["admin"].email)
    for page, url, data in (
            ("/admin/clients", f"/admin/clients/{world['client'].code}/transfer",
             {"therapist_id": str(world["other"].id)}),
            (f"/admin/users/{world['therapist'].id}",
             f"/admin/users/{world['therapist'].id}/disable", {}),
            ("/admin/tokens", f"/admin/tokens/{world['admin_token'].id}/revoke", {}),
            ("/admin/instruments", "/admin/instruments/k10/revoke", {})):
        assert _post(client, page, url, confirm="yes", **data).status_code == 302, url
    active, therapist_id, admin_revoked, _own, _links, attestation = _state(db_session, world)
    assert not active and therapist_id == world["other"].id
    assert admin_revoked is not None and attestation is not None


def test_therapist_actions_need_confirmation(auth, client, db_session, world):
    auth.login(world["therapist"].email)
    code = world["client"].code
    for html_page in (f"/clients/{code}/care", "/account/tokens"):
        assert 'name="confirm" value="yes" required' in client.get(html_page).get_data(
            as_text=True)
    before = _state(db_session, world)
    for page, url in ((f"/clients/{code}/care", f"/clients/{code}/links/revoke"),
                      ("/account/tokens", f"/account/tokens/{world['own_token'].id}/revoke")):
        response = _post(client, page, url)
        assert response.status_code == 400 and REFUSAL in response.get_data(as_text=True)
    assert _state(db_session, world) == before
    for page, url in ((f"/clients/{code}/care", f"/clients/{code}/links/revoke"),
                      ("/account/tokens", f"/account/tokens/{world['own_token'].id}/revoke")):
        assert _post(client, page, url, confirm="yes").status_code in (302, 303)
    _a, _t, _admin, own_revoked, links, _att = _state(db_session, world)
    assert own_revoked is not None and all(links)
