"""Configuration: precedence, validation, and one clear sentence per mistake."""

from __future__ import annotations

import pytest

from outcome.config import ConfigError
from outcome.config import describe
from outcome.config import load_config
from outcome.config import mask_url_password

GOOD_KEY = "k" * 40


def test_defaults_put_sqlite_in_the_instance_folder(tmp_path):
    values = load_config(tmp_path, environ={"OUTCOME_ENV": "development"})
    assert values["DATABASE_URL"] == f"sqlite:///{tmp_path / 'outcome.sqlite3'}"
    assert values["TIMEZONE"] == "UTC"
    assert values["SMTP_PORT"] == 25


def test_environment_overrides_file_which_overrides_defaults(tmp_path):
    (tmp_path / "outcome.toml").write_text(
        f'secret_key = "{GOOD_KEY}"\ntimezone = "Europe/London"\nsmtp_port = 587\n')
    values = load_config(tmp_path, environ={"OUTCOME_SMTP_PORT": "2525"})
    assert values["TIMEZONE"] == "Europe/London"  # from the file
    assert values["SMTP_PORT"] == 2525  # environment wins
    assert values["SECRET_KEY"] == GOOD_KEY


def test_explicit_overrides_win_and_flask_keys_pass_through(tmp_path):
    values = load_config(tmp_path, environ={"OUTCOME_TIMEZONE": "Europe/Paris"},
                         overrides={"TIMEZONE": "Asia/Tokyo", "ENV": "test", "TESTING": True})
    assert values["TIMEZONE"] == "Asia/Tokyo"
    assert values["TESTING"] is True


def test_config_file_can_be_named_by_environment(tmp_path):
    other = tmp_path / "elsewhere.toml"
    other.write_text(f'secret_key = "{GOOD_KEY}"\n')
    values = load_config(tmp_path, environ={"OUTCOME_CONFIG_FILE": str(other)})
    assert values["SECRET_KEY"] == GOOD_KEY


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "OUTCOME_SECRET_KEY is not set"),
    ({"OUTCOME_SECRET_KEY": "short"}, "OUTCOME_SECRET_KEY is too short"),
    ({"OUTCOME_SECRET_KEY": GOOD_KEY, "OUTCOME_SMTP_PORT": "abc"},
     "OUTCOME_SMTP_PORT must be a whole number; got 'abc'"),
    ({"OUTCOME_SECRET_KEY": GOOD_KEY, "OUTCOME_ENV": "staging"},
     "OUTCOME_ENV must be one of production, development, test"),
    ({"OUTCOME_SECRET_KEY": GOOD_KEY, "OUTCOME_TIMEZONE": "Mars/Olympus"},
     "OUTCOME_TIMEZONE 'Mars/Olympus' is not an IANA time zone"),
    ({"OUTCOME_SECRET_KEY": GOOD_KEY, "OUTCOME_SMTP_SECURITY": "ssl"},
     "OUTCOME_SMTP_SECURITY must be one of auto, starttls, tls, none"),
])
def test_bad_settings_name_the_variable(tmp_path, environ, expected):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ=environ)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("env", ["development", "test"])
def test_missing_secret_key_is_allowed_outside_production(tmp_path, env):
    assert load_config(tmp_path, environ={"OUTCOME_ENV": env})["SECRET_KEY"] is None


def test_unknown_key_in_file_is_an_error_not_ignored(tmp_path):
    (tmp_path / "outcome.toml").write_text('secret_kye = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'secret_kye'"):
        load_config(tmp_path, environ={})


def test_broken_toml_names_the_file(tmp_path):
    (tmp_path / "outcome.toml").write_text("secret_key = \n")
    with pytest.raises(ConfigError, match=r"outcome\.toml: not valid TOML"):
        load_config(tmp_path, environ={})


def test_wrong_type_in_file(tmp_path):
    (tmp_path / "outcome.toml").write_text(f'secret_key = "{GOOD_KEY}"\nsmtp_port = "x"\n')
    with pytest.raises(ConfigError, match="SMTP_PORT must be a whole number"):
        load_config(tmp_path, environ={})


def test_describe_masks_secrets(tmp_path):
    values = load_config(tmp_path, environ={
        "OUTCOME_SECRET_KEY": GOOD_KEY, "OUTCOME_SMTP_PASSWORD": "hunter2hunter2",
        "OUTCOME_DATABASE_URL": "postgresql+psycopg://app:s3cret@db:5432/outcome"})
    shown = {env: value for env, value, _ in describe(values)}
    assert shown["OUTCOME_SECRET_KEY"] == "(set)"
    assert shown["OUTCOME_SMTP_PASSWORD"] == "(set)"
    assert shown["OUTCOME_DATABASE_URL"] == "postgresql+psycopg://app:***@db:5432/outcome"
    assert GOOD_KEY not in repr(shown)


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
])
def test_mask_url_password(url, masked):
    assert mask_url_password(url) == masked
