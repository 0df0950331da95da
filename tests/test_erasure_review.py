"""Issue 20, the independent review of erasure and retention: the defects it found, each
kept fixed by a test here (the fixtures are those of tests/test_erasure.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.services import retention
from outcome.services.erasure import erase_client
from tests.test_erasure import CANARY
from tests.test_erasure import LIB
from tests.test_erasure import T0
from tests.test_erasure import _text_of_every_table
from tests.test_erasure import canary  # noqa: F401  (a fixture)
from tests.test_erasure import ended  # noqa: F401  (a fixture)

NOON = dt.time(12, tzinfo=dt.UTC)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, NOON)


def _notices(session) -> list[OutboundEmail]:
    return list(session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "retention")
                                .order_by(OutboundEmail.id)))


# --- 1. a client listed a second time gets a new notice ------------------------------------


def test_client_listed_again_after_returning_to_care_gets_a_new_notice(
        ended, db_session, make_episode):  # noqa: F811
    """Security promise: a client listed years ago, back in care and due again, is erased
    only the notice period after the new listing."""
    person, _other, clinic = ended
    first = db_session.scalar(select(Episode).where(Episode.client_id == person.id))
    first.opened_on, first.closed_on = dt.date(2009, 1, 1), dt.date(2010, 6, 1)
    db_session.flush()
    retention.dry_run(db_session, clinic, _at(dt.date(2016, 1, 10)), base_url="http://x")
    make_episode(person, opened_on=dt.date(2016, 2, 1), closed_on=dt.date(2017, 12, 1),
                 end_reason="completed")
    listed_again = dt.date(2023, 1, 5)
    for offset in range(14):
        day = listed_again + dt.timedelta(days=offset)
        retention.run_retention(db_session, clinic, _at(day), base_url="http://x")
        assert person.erased_dt is None, day
    retention.run_retention(db_session, clinic, _at(listed_again + dt.timedelta(days=14)),
                            base_url="http://x")
    assert person.erased_dt is not None


# --- 2. the notice: only for new listings, with the true dates ------------------------------


def test_notice_is_sent_only_for_new_listings_and_gives_the_true_date(
        ended, db_session, make_episode):  # noqa: F811
    person, other, clinic = ended
    day = dt.date(2026, 12, 4)
    retention.dry_run(db_session, clinic, _at(day), base_url="http://x")
    admin_notices = [n for n in _notices(db_session) if "/admin/retention" in n.body_text]
    assert len(admin_notices) == 1
    body = admin_notices[0].body_text
    assert "1 newly listed" in body and "2026-12-18" in body
    assert person.code not in body and CANARY not in body and "Control" not in body
    before = len(_notices(db_session))
    retention.dry_run(db_session, clinic, _at(day + dt.timedelta(days=1)), base_url="http://x")
    assert len(_notices(db_session)) == before  # nobody new: no e-mail
    # The control client's care ends long ago too: a new listing, a new notice and date.
    episode = db_session.scalar(select(Episode).where(Episode.client_id == other.id))
    episode.opened_on, episode.closed_on, episode.end_reason = (
        dt.date(2018, 1, 1), dt.date(2018, 2, 1), "completed")
    db_session.flush()
    retention.dry_run(db_session, clinic, _at(day + dt.timedelta(days=2)), base_url="http://x")
    newer = [n for n in _notices(db_session)[before:] if "/admin/retention" in n.body_text]
    assert len(newer) == 1
    assert "1 newly listed" in newer[0].body_text and "2026-12-20" in newer[0].body_text
    assert other.code not in newer[0].body_text and person.code not in newer[0].body_text


# --- 12. the therapist hears of their own clients; the page counts who is due --------------


def test_therapist_of_a_listed_client_is_told_by_code(canary, ended, db_session):  # noqa: F811
    person, _other, clinic = ended
    therapist = canary[2]
    retention.dry_run(db_session, clinic, _at(dt.date(2026, 12, 4)), base_url="http://x")
    mine = [n for n in _notices(db_session) if n.to_address == therapist.email]
    assert len(mine) == 1
    assert person.code in mine[0].body_text and CANARY not in mine[0].body_text
    assert "2026-12-18" in mine[0].body_text


def test_retention_page_says_how_many_clients_the_setting_makes_due(
        canary, ended, auth, client):  # noqa: F811
    admin = canary[3]
    auth.login(admin.email)
    page = client.get("/admin/retention").get_data(as_text=True)
    assert "makes 1 client" in page or "makes 1 clients" in page
    settings_page = client.get("/admin/settings").get_data(as_text=True)
    assert "makes 1 client" in settings_page or "makes 1 clients" in settings_page


# --- 3. a transferred client's old therapist's reports go too -------------------------------


def test_erasure_deletes_the_previous_therapists_reports(canary, db_session, make_user):  # noqa: F811
    """Security promise: after a transfer, the briefs of the therapist who held the client
    before are deleted too."""
    from outcome.services import audit
    from outcome.services.staff import transfer_client
    person, _other, old, admin = canary
    new = make_user(locale="en")
    transfer_client(db_session, person, new, T0)
    audit.record(db_session, action="client.transfer", outcome="allowed", now=T0,
                 actor_user_id=admin.id, clinic_id=person.clinic_id, client_id=person.id,
                 object_type="user", object_id=new.id)
    db_session.commit()
    assert CANARY in _text_of_every_table(db_session)
    erase_client(db_session, person, "request", admin, T0 + dt.timedelta(days=1))
    db_session.commit()
    assert "Canarywick" not in _text_of_every_table(db_session)
    assert db_session.scalar(select(ReportDocument.id).join(ReportRun).where(
        ReportRun.recipient_user_id == old.id)) is None


def test_erasure_without_a_transfer_keeps_other_therapists_reports(canary, db_session,  # noqa: F811
                                                                    make_user):
    person, _other, _therapist, admin = canary
    stranger = make_user(locale="en")
    run = ReportRun(kind="therapist_brief", period="2026-10-06", recipient_user_id=stranger.id,
                    status="succeeded", content_sha256="2" * 64)
    db_session.add(run)
    db_session.flush()
    content = b"%PDF-1.4 another caseload"
    db_session.add(ReportDocument(report_run_id=run.id, filename="b.pdf", content=content,
                                  sha256=hashlib.sha256(content).hexdigest(),
                                  size_bytes=len(content), created_dt=T0))
    db_session.commit()
    erase_client(db_session, person, "request", admin, T0 + dt.timedelta(days=1))
    db_session.commit()
    assert db_session.scalar(select(ReportDocument.id).where(
        ReportDocument.report_run_id == run.id)) is not None


# --- 4. the client's IP address ------------------------------------------------------------


def test_client_ip_address_is_not_kept_for_client_events(canary, db_session, client, clock):  # noqa: F811
    """Security promise: the audit trail keeps no IP address of a client (client-actor
    events store none), so an erased client's address is in no table."""
    from outcome.services.links import issue_link
    person, _other, _therapist, admin = canary
    episode = db_session.scalar(select(Episode).where(Episode.client_id == person.id))
    _link, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                              library=LIB)
    db_session.commit()
    response = client.get(f"/q/{token}", environ_base={"REMOTE_ADDR": "203.0.113.77"})
    assert response.status_code < 500
    db_session.expire_all()
    events = list(db_session.scalars(select(AuditEvent).where(
        AuditEvent.client_id == person.id, AuditEvent.actor_kind == "client")))
    assert events, "the link's opening is audited"
    erase_client(db_session, db_session.get(Client, person.id), "request", admin, clock())
    db_session.commit()
    assert "203.0.113.77" not in _text_of_every_table(db_session)


# --- 6. one clinic's failure does not stop the others --------------------------------------


def test_one_failing_clinic_does_not_stop_retention_for_the_others(
        ended, app, db_session, make_clinic, monkeypatch, caplog):  # noqa: F811
    from outcome import jobs
    person, _other, clinic = ended
    broken = make_clinic()
    broken.settings = {**(broken.settings or {}), "retention_years": 5}
    db_session.commit()
    assert broken.id != clinic.id
    real = retention.run_retention

    def failing(session, target, now, *, base_url):
        if target.id == broken.id:
            raise RuntimeError("boom")
        return real(session, target, now, base_url=base_url)

    monkeypatch.setattr(retention, "run_retention", failing)
    now = dt.datetime(2026, 12, 4, 4, 5, tzinfo=dt.UTC)
    with caplog.at_level(logging.ERROR, logger="outcome.jobs"):
        jobs.apply_retention(app, now - dt.timedelta(days=20))
        assert jobs.apply_retention(app, now) == 1
    assert f"clinic {broken.id}" in caplog.text and person.code not in caplog.text
    db_session.expire_all()
    assert db_session.get(Client, person.id).erased_dt is not None
    assert db_session.get(Clinic, broken.id) is not None
