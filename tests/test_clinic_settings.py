"""Clinic settings: defaults, validation, and the command line."""

from __future__ import annotations

import pytest

from outcome.services.clinic_settings import SettingError
from outcome.services.clinic_settings import current
from outcome.services.clinic_settings import parse
from outcome.services.clinic_settings import update


def test_defaults_come_from_the_domain(clinic):
    values = current(clinic)
    assert (values["colour_green_max"], values["colour_yellow_max"]) == (0.75, 0.90)
    assert (values["model_min_episodes"], values["repair_window"]) == (50, 2)


@pytest.mark.parametrize(("changes", "message"), [
    ({"colour_green_max": 1.5}, "colour_green_max must be between 0 and 1"),
    ({"colour_green_max": 0.95}, "colour_green_max must be below colour_yellow_max"),
    ({"repair_window": 0}, "repair_window must be from 1 to 10"),
    ({"colour": 1}, "unknown setting 'colour'"),
])
def test_bad_values_are_refused_and_nothing_is_stored(db_session, clinic, changes, message):
    with pytest.raises(SettingError, match=message):
        update(db_session, clinic, changes)
    assert clinic.settings == {"consent_online": False}  # the test world's (issue 20)


def test_parse_from_text():
    assert parse("repair_window", "3") == 3
    with pytest.raises(SettingError, match="repair_window must be a whole number"):
        parse("repair_window", "three")


def test_cli(runner, db_session, clinic):
    db_session.commit()
    result = runner.invoke(args=["clinic", "settings", clinic.slug, "colour_yellow_max=0.85",
                                 "repair_window=3"])
    assert result.exit_code == 0, result.output
    assert "colour_yellow_max = 0.85" in result.output and "recompute" in result.output
    result = runner.invoke(args=["clinic", "settings", clinic.slug, "repair_window=x"])
    assert result.exit_code == 1 and "must be a whole number" in result.output
