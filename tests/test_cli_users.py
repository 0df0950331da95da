"""``outcome users``: staff accounts from the command line."""

from __future__ import annotations

import re

from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import User
from outcome.services.passwords import verify_password

NEW_PASSWORD = "a lantern by the quiet harbour"


def user(db_session, email):
    db_session.expire_all()
    return db_session.scalar(select(User).where(User.email == email))


def test_create_with_a_prompted_password_never_echoes_it(runner, db_session, clinic):
    db_session.commit()
    result = runner.invoke(args=["users", "create", "First.Admin@Example.org", "--name",
                                 "First Admin", "--role", "admin", "--role", "therapist"],
                           input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output
    assert "Repeat the password" in result.output
    assert f"Created first.admin@example.org (admin, therapist) in {clinic.slug}." in (
        result.output)
    created = user(db_session, "first.admin@example.org")
    assert verify_password(created.password_hash, NEW_PASSWORD)
    [event] = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create"))
    assert (event.actor_kind, event.actor_label, event.object_id, event.clinic_id) == (
        "system", "outcome users create", str(created.id), clinic.id)


def test_create_with_a_generated_password_prints_it_once(runner, db_session, clinic):
    db_session.commit()
    result = runner.invoke(args=["users", "create", "t@example.org", "--name", "T", "--role",
                                 "therapist", "--generate-password"])
    assert result.exit_code == 0, result.output
    password = re.search(r"Password \(shown only now\): (\S+)", result.output).group(1)
    assert result.output.count(password) == 1
    assert verify_password(user(db_session, "t@example.org").password_hash, password)


def test_create_refusals(runner, db_session, clinic, make_user, make_clinic):
    make_user(email="taken@example.org")
    db_session.commit()
    taken = runner.invoke(args=["users", "create", "TAKEN@example.org", "--name", "X",
                                "--role", "therapist", "--generate-password"])
    assert taken.exit_code == 1 and "already an account" in taken.output
    weak = runner.invoke(args=["users", "create", "w@example.org", "--name", "W", "--role",
                               "therapist"], input="short\nshort\n")
    assert weak.exit_code == 1 and "at least 15 characters" in weak.output
    assert "Traceback" not in weak.output
    mismatch = runner.invoke(args=["users", "create", "m@example.org", "--name", "M",
                                   "--role", "therapist"],
                             input=f"{NEW_PASSWORD}\nother\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output
    role = runner.invoke(args=["users", "create", "r@example.org", "--name", "R", "--role",
                               "owner", "--generate-password"])
    assert role.exit_code == 2 and "'owner' is not one of" in role.output
    no_role = runner.invoke(args=["users", "create", "r@example.org", "--name", "R"])
    assert no_role.exit_code == 2
    assert user(db_session, "w@example.org") is None and user(db_session, "r@example.org") is None
    make_clinic()
    db_session.commit()
    ambiguous = runner.invoke(args=["users", "create", "a@example.org", "--name", "A",
                                    "--role", "therapist", "--generate-password"])
    assert ambiguous.exit_code == 2 and "several clinics" in ambiguous.output
    unknown = runner.invoke(args=["users", "create", "a@example.org", "--name", "A", "--role",
                                  "therapist", "--generate-password", "--clinic", "nope"])
    assert unknown.exit_code == 2 and "no clinic 'nope'" in unknown.output
    named = runner.invoke(args=["users", "create", "a@example.org", "--name", "A", "--role",
                                "therapist", "--generate-password", "--clinic", clinic.slug])
    assert named.exit_code == 0, named.output


def test_list(runner, db_session, clinic, make_user, make_clinic):
    make_user("admin", email="boss@example.org", display_name="The Boss")
    make_user("therapist", email="gone@example.org", is_active=False)
    make_user("therapist", email="elsewhere@example.org", clinic_id=make_clinic().id)
    db_session.commit()
    result = runner.invoke(args=["users", "list", "--clinic", clinic.slug])
    assert result.exit_code == 0, result.output
    assert "2 account(s)" in result.output
    assert re.search(r"boss@example.org\s+The Boss\s+admin\s+active\s+last sign-in never",
                     result.output)
    assert re.search(r"gone@example.org .* disabled", result.output)
    assert "elsewhere@example.org" not in result.output
    assert runner.invoke(args=["users", "list"]).exit_code == 2  # which clinic?


def test_disable_enable_and_reset(runner, db_session, clinic, make_user, make_client):
    make_user("admin")
    therapist = make_user("therapist", email="theo@example.org")
    make_client(therapist)
    db_session.commit()
    result = runner.invoke(args=["users", "disable", "THEO@example.org"])
    assert result.exit_code == 0, result.output
    assert "Disabled theo@example.org" in result.output
    assert "still has 1 client(s): transfer them" in result.output
    assert user(db_session, "theo@example.org").session_version == 2
    again = runner.invoke(args=["users", "disable", "theo@example.org"])
    assert again.exit_code == 1 and "already disabled" in again.output
    assert runner.invoke(args=["users", "enable", "theo@example.org"]).exit_code == 0
    assert user(db_session, "theo@example.org").is_active
    reset = runner.invoke(args=["users", "reset-password", "theo@example.org"],
                          input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert reset.exit_code == 0, reset.output
    assert NEW_PASSWORD not in reset.output and "sessions have ended" in reset.output
    theo = user(db_session, "theo@example.org")
    assert verify_password(theo.password_hash, NEW_PASSWORD) and theo.session_version == 3
    generated = runner.invoke(args=["users", "reset-password", "theo@example.org",
                                    "--generate-password"])
    password = re.search(r"Password \(shown only now\): (\S+)", generated.output).group(1)
    assert verify_password(user(db_session, "theo@example.org").password_hash, password)
    actions = [(e.action, e.actor_label) for e in db_session.scalars(
        select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == [("user.disable", "outcome users disable"),
                       ("user.enable", "outcome users enable"),
                       ("user.password.reset", "outcome users reset-password"),
                       ("user.password.reset", "outcome users reset-password")]


def test_refusals_of_disable_and_unknown_users(runner, db_session, clinic, make_user,
                                               make_clinic):
    make_user("admin", email="only@example.org")
    db_session.commit()
    last = runner.invoke(args=["users", "disable", "only@example.org"])
    assert last.exit_code == 1 and "last active admin" in last.output
    assert user(db_session, "only@example.org").is_active
    missing = runner.invoke(args=["users", "enable", "nobody@example.org"])
    assert missing.exit_code == 2 and "no user 'nobody@example.org'" in missing.output
    other = make_clinic()
    db_session.commit()
    wrong = runner.invoke(args=["users", "reset-password", "only@example.org", "--clinic",
                                other.slug, "--generate-password"])
    assert wrong.exit_code == 2 and "is not a user of" in wrong.output
    assert db_session.scalars(select(AuditEvent)).all() == []
