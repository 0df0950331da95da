"""Separation of duties (issue 16, finding 2): an admin cannot give themselves client access.

Adding the therapist or supervisor role to one's own account, taking a client, or making
oneself a supervisor waits for a second active admin of the clinic, who approves or
declines it on the approvals page; the requester can cancel, never approve. With a single
active admin the change is refused and the message names the way out (a second admin, or
``outcome users grant`` on the server, audited). A password reset by an admin ends the
user's sessions, tells them by e-mail (no clinical content) and is listed for the
clinic's other admins.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import OutboundEmail
from outcome.models import SupervisorAssignment
from outcome.models import User
from tests.conftest import AuthActions
from tests.conftest import csrf_token

CANARY = "Zebediah Canaryname"
NEW_PASSWORD = "a lantern by the quiet harbour"


@pytest.fixture
def world(db_session, make_user, make_client, make_episode):
    """Two admins (Ada, not a clinician; Bea), a therapist with a canary client."""
    ada = make_user("admin", display_name="Ada Admin")
    bea = make_user("admin", display_name="Bea Admin")
    therapist = make_user("therapist", display_name="Theo Therapist")
    person = make_client(therapist, name=CANARY)
    make_episode(person)
    db_session.commit()
    return {"ada": ada, "bea": bea, "therapist": therapist, "client": person}


def post(browser, url, **data):
    token = csrf_token(browser.get("/admin/").get_data(as_text=True))
    return browser.post(url, data={"csrf_token": token, **data})


def follow(browser, response) -> str:
    assert response.status_code in (302, 303), response.status_code
    return browser.get(response.headers["Location"]).get_data(as_text=True)


def signed_in(app, user):
    browser = app.test_client()
    assert AuthActions(browser).login(user.email).status_code == 302
    return browser


def actions(db_session, prefix):
    return [(e.action, e.outcome) for e in db_session.scalars(
        select(AuditEvent).where(AuditEvent.action.like(f"{prefix}%")).order_by(AuditEvent.id))]


def pending(db_session):
    from outcome.models import AccessRequest

    db_session.expire_all()
    return db_session.scalars(select(AccessRequest).where(AccessRequest.status == "pending")
                              .order_by(AccessRequest.id)).all()


def fresh(db_session, user) -> User:
    db_session.expire_all()
    return db_session.get(User, user.id)


# --- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["therapist", "supervisor"])
def test_an_admin_adding_a_clinical_role_to_themselves_waits_for_a_second_admin(
        app, db_session, world, role):
    ada = world["ada"]
    browser = signed_in(app, ada)
    html = follow(browser, post(browser, f"/admin/users/{ada.id}/roles",
                                role=["admin", role]))
    assert "awaits the approval of another admin" in html
    assert fresh(db_session, ada).roles == ("admin",)  # nothing changed yet
    [request] = pending(db_session)
    assert (request.requester_id, request.kind) == (ada.id, "roles")
    assert actions(db_session, "access_request") == [("access_request.create", "allowed")]
    # The other admin is told by e-mail, with nothing about clients.
    [told] = db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "access_request")).all()
    assert told.to_address == world["bea"].email and "Ada Admin" in told.body_text
    assert "/admin/approvals" in told.body_text
    # The requester sees it, can cancel it, cannot approve it.
    assert "Ada Admin" in browser.get("/admin/approvals").get_data(as_text=True)
    html = follow(browser, post(browser, f"/admin/approvals/{request.id}/approve"))
    assert "cannot approve your own request" in html
    assert fresh(db_session, ada).roles == ("admin",)
    # Bea approves: the role is given in the same transaction.
    bea = signed_in(app, world["bea"])
    page = bea.get("/admin/approvals").get_data(as_text=True)
    assert "Ada Admin" in page and CANARY not in page
    follow(bea, post(bea, f"/admin/approvals/{request.id}/approve"))
    assert role in fresh(db_session, ada).roles
    assert pending(db_session) == []
    assert actions(db_session, "access_request") == [
        ("access_request.create", "allowed"), ("access_request.approve", "error"),
        ("access_request.approve", "allowed")]
    [change] = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "user.roles.change", AuditEvent.outcome == "allowed"))
    assert (change.actor_user_id, change.object_id) == (world["bea"].id, str(ada.id))


def test_giving_another_staff_member_a_role_needs_no_approval(app, db_session, world):
    browser = signed_in(app, world["ada"])
    follow(browser, post(browser, f"/admin/users/{world['bea'].id}/roles",
                         role=["admin", "therapist"]))
    assert fresh(db_session, world["bea"]).roles == ("admin", "therapist")
    assert pending(db_session) == []


def test_dropping_a_role_of_ones_own_needs_no_approval(app, db_session, world, make_user):
    ada = world["ada"]
    ada.is_therapist = True
    db_session.commit()
    browser = signed_in(app, ada)
    follow(browser, post(browser, f"/admin/users/{ada.id}/roles", role=["admin"]))
    assert fresh(db_session, ada).roles == ("admin",)
    assert pending(db_session) == []


def test_a_declined_or_cancelled_request_changes_nothing(app, db_session, world):
    ada, bea = world["ada"], world["bea"]
    mine = signed_in(app, ada)
    other = signed_in(app, bea)
    post(mine, f"/admin/users/{ada.id}/roles", role=["admin", "therapist"])
    [first] = pending(db_session)
    # Only the requester cancels; only another admin declines.
    assert "only by the admin who asked" in follow(other, post(
        other, f"/admin/approvals/{first.id}/cancel"))
    assert "cannot decline your own request" in follow(mine, post(
        mine, f"/admin/approvals/{first.id}/decline"))
    follow(other, post(other, f"/admin/approvals/{first.id}/decline"))
    post(mine, f"/admin/users/{ada.id}/roles", role=["admin", "therapist"])
    [second] = pending(db_session)
    follow(mine, post(mine, f"/admin/approvals/{second.id}/cancel"))
    assert pending(db_session) == []
    assert fresh(db_session, ada).roles == ("admin",)
    assert [a for a in actions(db_session, "access_request") if a[1] == "allowed"] == [
        ("access_request.create", "allowed"), ("access_request.decline", "allowed"),
        ("access_request.create", "allowed"), ("access_request.cancel", "allowed")]
    # A decided request cannot be approved afterwards.
    assert "no longer waiting" in follow(other, post(
        other, f"/admin/approvals/{first.id}/approve"))
    assert fresh(db_session, ada).roles == ("admin",)


def test_a_request_expires_after_seven_days(app, db_session, world, clock):
    ada = world["ada"]
    post(signed_in(app, ada), f"/admin/users/{ada.id}/roles", role=["admin", "therapist"])
    [request] = pending(db_session)
    clock.advance(days=7, seconds=1)
    bea = signed_in(app, world["bea"])
    assert "Expired" in bea.get("/admin/approvals").get_data(as_text=True)
    assert "expired" in follow(bea, post(bea, f"/admin/approvals/{request.id}/approve"))
    assert fresh(db_session, ada).roles == ("admin",)


def test_the_same_request_is_not_made_twice(app, db_session, world):
    ada = world["ada"]
    browser = signed_in(app, ada)
    post(browser, f"/admin/users/{ada.id}/roles", role=["admin", "therapist"])
    html = follow(browser, post(browser, f"/admin/users/{ada.id}/roles",
                                role=["admin", "therapist"]))
    assert "already waiting" in html
    assert len(pending(db_session)) == 1


# --- transfers and supervision -------------------------------------------------------------


def test_an_admin_taking_a_client_waits_for_a_second_admin(app, db_session, world):
    ada, person = world["ada"], world["client"]
    ada.is_therapist = True  # a clinician admin, the role approved earlier
    db_session.commit()
    browser = signed_in(app, ada)
    html = follow(browser, post(browser, f"/admin/clients/{person.code}/transfer", confirm="yes",
                                therapist_id=ada.id))
    assert "awaits the approval of another admin" in html
    db_session.expire_all()
    assert person.therapist_id == world["therapist"].id
    assert browser.get(f"/clients/{person.code}/care").status_code == 404
    [request] = pending(db_session)
    assert (request.kind, request.client_id) == ("transfer", person.id)
    [asked] = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "access_request.create"))
    assert asked.client_id == person.id  # in the client's own audit trail
    [told] = db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "access_request")).all()
    assert person.code not in told.body_text and CANARY not in told.body_text
    bea = signed_in(app, world["bea"])
    page = bea.get("/admin/approvals").get_data(as_text=True)
    assert person.code in page and CANARY not in page
    follow(bea, post(bea, f"/admin/approvals/{request.id}/approve"))
    db_session.expire_all()
    assert person.therapist_id == ada.id
    assert browser.get(f"/clients/{person.code}/care").status_code == 200
    [moved] = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "client.transfer", AuditEvent.outcome == "allowed"))
    assert (moved.actor_user_id, moved.client_id) == (world["bea"].id, person.id)


def test_transferring_to_another_therapist_needs_no_approval(app, db_session, world,
                                                             make_user):
    other = make_user("therapist")
    db_session.commit()
    browser = signed_in(app, world["ada"])
    post(browser, f"/admin/clients/{world['client'].code}/transfer",
         confirm="yes", therapist_id=other.id)
    db_session.expire_all()
    assert world["client"].therapist_id == other.id
    assert pending(db_session) == []


def test_an_admin_making_themselves_a_supervisor_waits_for_a_second_admin(
        app, db_session, world):
    ada, therapist = world["ada"], world["therapist"]
    ada.is_supervisor = True
    db_session.commit()
    browser = signed_in(app, ada)
    html = follow(browser, post(browser, "/admin/assignments", supervisor_id=ada.id,
                                therapist_id=therapist.id))
    assert "awaits the approval of another admin" in html
    assert db_session.scalars(select(SupervisorAssignment)).all() == []
    [request] = pending(db_session)
    bea = signed_in(app, world["bea"])
    follow(bea, post(bea, f"/admin/approvals/{request.id}/approve"))
    db_session.expire_all()
    [pair] = db_session.scalars(select(SupervisorAssignment)).all()
    assert (pair.supervisor_id, pair.therapist_id) == (ada.id, therapist.id)


# --- a single admin ----------------------------------------------------------------------


def test_a_single_admin_is_refused_with_the_way_out(app, db_session, world):
    world["bea"].is_active = False  # Ada is now the clinic's only active admin
    ada, person = world["ada"], world["client"]
    db_session.commit()
    browser = signed_in(app, ada)
    html = follow(browser, post(browser, f"/admin/users/{ada.id}/roles",
                                role=["admin", "therapist"]))
    assert "only active admin" in html
    assert "add a second admin" in html and "outcome users grant" in html
    assert fresh(db_session, ada).roles == ("admin",)
    assert pending(db_session) == []
    assert actions(db_session, "user.roles") == [("user.roles.change", "error")]
    ada.is_therapist = True
    db_session.commit()
    html = follow(browser, post(browser, f"/admin/clients/{person.code}/transfer", confirm="yes",
                                therapist_id=ada.id))
    assert "only active admin" in html and "outcome users grant" in html
    db_session.expire_all()
    assert person.therapist_id == world["therapist"].id


def test_the_server_command_grants_access_and_is_audited(runner, db_session, world):
    ada, person = world["ada"], world["client"]
    world["bea"].is_active = False
    db_session.commit()
    result = runner.invoke(args=["users", "grant", ada.email, "--role", "therapist",
                                 "--client", person.code])
    assert result.exit_code == 0, result.output
    assert fresh(db_session, ada).roles == ("admin", "therapist")
    db_session.expire_all()
    assert person.therapist_id == ada.id
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action.in_(("user.roles.change", "client.transfer")))
        .order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor_kind) for e in events] == [
        ("user.roles.change", "system"), ("client.transfer", "system")]
    assert all(e.actor_label.startswith("outcome users grant") for e in events)
    assert events[1].client_id == person.id
    refused = runner.invoke(args=["users", "grant", ada.email, "--client", "C-NOSUCH"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output


# --- password resets ---------------------------------------------------------------------


def test_a_password_reset_ends_sessions_tells_the_user_and_is_listed_for_other_admins(
        app, db_session, world):
    therapist = world["therapist"]
    theirs = signed_in(app, therapist)
    captured = theirs.get_cookie("session").value
    ada = signed_in(app, world["ada"])
    post(ada, f"/admin/users/{therapist.id}/password", password_choice="set",
         password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    replay = app.test_client()
    replay.set_cookie("session", captured)
    assert replay.get("/").status_code == 302  # the old session is refused
    [mail] = db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "password_reset")).all()
    assert mail.to_address == therapist.email
    assert "Ada Admin" in mail.body_text
    assert CANARY not in mail.body_text and world["client"].code not in mail.body_text
    assert NEW_PASSWORD not in mail.body_text and "/q/" not in mail.body_text
    overview = signed_in(app, world["bea"]).get("/admin/").get_data(as_text=True)
    section = overview.split("Recent account security changes", 1)[1]
    assert re.search(r"Password reset.*Theo Therapist", section, re.DOTALL)
    assert "Ada Admin" in section


def test_the_server_command_makes_a_supervisor_and_refuses_nonsense(runner, db_session,
                                                                     world):
    ada, therapist = world["ada"], world["therapist"]
    result = runner.invoke(args=["users", "grant", ada.email, "--role", "supervisor",
                                 "--supervises", therapist.email])
    assert result.exit_code == 0, result.output
    [pair] = db_session.scalars(select(SupervisorAssignment)).all()
    assert (pair.supervisor_id, pair.therapist_id) == (ada.id, therapist.id)
    assert actions(db_session, "assignment") == [("assignment.create", "allowed")]
    nothing = runner.invoke(args=["users", "grant", ada.email])
    assert nothing.exit_code == 2 and "at least one" in nothing.output


def test_a_reset_on_the_server_tells_the_user_too(runner, db_session, world):
    therapist = world["therapist"]
    result = runner.invoke(args=["users", "reset-password", therapist.email,
                                 "--generate-password"])
    assert result.exit_code == 0, result.output
    [mail] = db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "password_reset")).all()
    assert mail.to_address == therapist.email and "server's operator" in mail.body_text
    password = re.search(r"Password \(shown only now\): (\S+)", result.output).group(1)
    assert password not in mail.body_text


def test_the_database_refuses_an_approval_by_the_requester(db_session, world, clock):
    import datetime as dt

    from sqlalchemy.exc import IntegrityError

    from outcome.models import AccessRequest

    ada = world["ada"]
    request = AccessRequest(clinic_id=ada.clinic_id, requester_id=ada.id, kind="roles",
                            roles_before="admin", roles_after="admin,therapist",
                            status="approved", decided_by_id=ada.id, decided_dt=clock(),
                            created_dt=clock(), expires_dt=clock() + dt.timedelta(days=7))
    db_session.add(request)
    with pytest.raises(IntegrityError):
        db_session.flush()
    db_session.rollback()
