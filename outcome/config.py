"""Configuration: declared settings, read from defaults, an instance file, then the environment.

Every setting is declared once in :data:`SETTINGS` with its type, default and a line
of documentation, so that a wrong value produces one clear sentence naming the
variable to set, and ``outcome config show`` can list them all.

Order of precedence, lowest first:

1. the defaults below;
2. the instance file ``<instance>/outcome.toml`` (or ``OUTCOME_CONFIG_FILE``), whose
   keys are the setting names in lower case (``database_url = "..."``);
3. environment variables ``OUTCOME_<NAME>`` (``OUTCOME_DATABASE_URL``);
4. a mapping passed to ``create_app(config=...)`` (tests and embedding).

This module imports no Flask, so the CLI can report configuration errors before an
application exists.
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "OUTCOME_"
CONFIG_FILE_NAME = "outcome.toml"
ENVIRONMENTS = ("production", "development", "test")


class ConfigError(Exception):
    """A setting is missing or wrong. The message is one sentence that says what to set."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_str(raw: str) -> str:
    return raw


@dataclass(frozen=True)
class Setting:
    """One configuration setting: its name (upper case), type, default and meaning."""

    name: str
    kind: type
    default: Any
    doc: str
    secret: bool = False
    choices: tuple[str, ...] = ()

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name

    def parse(self, raw: Any, source: str) -> Any:
        """Convert a raw value (a string from the environment, or a TOML value) to this type."""
        parsers: dict[type, Callable[[str], Any]] = {
            bool: _parse_bool,
            int: _parse_int,
            str: _parse_str,
        }
        if isinstance(raw, self.kind) and not (self.kind is int and isinstance(raw, bool)):
            value = raw
        elif isinstance(raw, str):
            try:
                value = parsers[self.kind](raw)
            except ValueError:
                raise ConfigError(
                    f"{source}: {self.env_var} must be {_kind_name(self.kind)}; got {raw!r}."
                ) from None
        else:
            raise ConfigError(
                f"{source}: {self.name.lower()} must be {_kind_name(self.kind)}; got {raw!r}."
            )
        if self.choices and value not in self.choices:
            raise ConfigError(
                f"{source}: {self.env_var} must be one of {', '.join(self.choices)}; got {value!r}."
            )
        return value


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", str: "text"}[kind]


SETTINGS: tuple[Setting, ...] = (
    Setting("ENV", str, "production", "production, development or test. Only development "
            "and test accept a missing secret key.", choices=ENVIRONMENTS),
    Setting("SECRET_KEY", str, None, "Signs sessions and CSRF tokens. At least 32 random "
            "characters; `outcome config init` writes one.", secret=True),
    Setting("DATABASE_URL", str, None, "SQLAlchemy URL. Default: a SQLite file "
            "`outcome.sqlite3` in the instance folder. PostgreSQL: "
            "postgresql+psycopg://user:password@host:5432/dbname", secret=True),
    Setting("TIMEZONE", str, "UTC", "IANA time zone of the clinic (Europe/London), used for "
            "appointment times, weeks and reports."),
    Setting("BASE_URL", str, "http://127.0.0.1:5000", "Public address of the site, used in "
            "links sent by e-mail."),
    Setting("SMTP_HOST", str, "localhost", "SMTP server for outgoing e-mail."),
    Setting("SMTP_PORT", int, 25, "SMTP port (25, 587 with STARTTLS, 465 with TLS)."),
    Setting("SMTP_SECURITY", str, "auto", "auto: STARTTLS whenever the server offers it "
            "(certificate checked only with SMTP_CA_FILE), plain otherwise; starttls: "
            "STARTTLS required, certificate verified; tls: TLS from the start (port 465), "
            "verified; none: plain text, for a relay on the same machine only.",
            choices=("auto", "starttls", "tls", "none")),
    Setting("SMTP_CA_FILE", str, "", "PEM file of the authority (or the certificate) that "
            "signs the SMTP server's certificate; empty: the system's authorities."),
    Setting("SMTP_USERNAME", str, "", "SMTP user name; empty for none."),
    Setting("SMTP_PASSWORD", str, "", "SMTP password.", secret=True),
    Setting("MAIL_FROM", str, "outcome@localhost", "Sender address of e-mails."),
    Setting("INSTRUMENTS_DIR", str, None, "Folder of the clinic's own instrument definitions "
            "and licensed-wording overlays (*.yaml). Default: `instruments` in the instance "
            "folder."),
    Setting("RATELIMIT_STORAGE_URL", str, "", "Where rate limits are counted. Empty: in "
            "memory with one worker, and with several `outcome serve` workers a shared "
            "SQLite file `ratelimits.sqlite3` in the instance folder; "
            "redis://127.0.0.1:6379 for Redis; sqlite:////path/file for a file of your "
            "choice. memory:// with several workers is refused outside development (it "
            "counts per worker, multiplying the limits)."),
    Setting("PROXY_HOPS", int, 0, "How many reverse proxies (nginx, Caddy) stand in front "
            "and set X-Forwarded-For/-Proto/-Host; 1 behind one TLS-terminating proxy. 0 "
            "trusts no forwarded header."),
    Setting("API_RATE_LIMIT", str, "300 per minute", "Requests each API token may make "
            "(Flask-Limiter notation, e.g. '300 per minute;5000 per hour'); counted in "
            "RATELIMIT_STORAGE_URL."),
    Setting("API_MAX_BODY_BYTES", int, 65536, "Largest API request body, in bytes; a "
            "larger one is refused with 413."),
    Setting("SQLITE_BUSY_TIMEOUT_MS", int, 15000, "How long a SQLite writer waits for "
            "another writer before giving up, in milliseconds (within gunicorn's 30 s "
            "worker timeout: a burst of writes queues instead of failing)."),
    Setting("ENCRYPTION_KEY_FILE", str, "", "Encryption at rest (off when no key is set): "
            "a file, mode 0600, outside the database and its backups, of keys one per line "
            "`<key id>:<base64 of 32 bytes>`, the current key first, older ones after it "
            "(they still decrypt). `outcome keys generate` writes one. Losing the keys "
            "loses the encrypted data."),
    Setting("ENCRYPTION_KEYS", str, "", "Encryption keys given in the environment instead "
            "of a file: `<key id>:<base64>` items separated by commas, current first; "
            "added after the key file's.", secret=True),
    Setting("LOG_LEVEL", str, "INFO", "DEBUG, INFO, WARNING or ERROR.",
            choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    # issue 20: passkeys
    Setting("PASSKEY_RP_ID", str, "", "The relying-party ID passkeys are bound to: the "
            "site's host name (outcome.example.org), never an IP address. Empty: the host "
            "of each request. Changing it later makes every registered passkey unusable."),
    Setting("PASSKEY_ORIGIN", str, "", "The origin pages run at, as browsers see it "
            "(https://outcome.example.org, with :port if not the default). Empty: the "
            "scheme and host of each request (behind a proxy, set PROXY_HOPS)."),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
MIN_SECRET_KEY_LENGTH = 32


INSTANCE_PATH_VAR = "OUTCOME_INSTANCE_PATH"


def instance_path() -> str | None:
    """``OUTCOME_INSTANCE_PATH``, or None for Flask's default (``./instance`` in a checkout)."""
    return os.environ.get(INSTANCE_PATH_VAR) or None


def config_file_path(instance_path: str | os.PathLike[str], environ: Mapping[str, str]) -> Path:
    """Where the instance configuration file is: ``OUTCOME_CONFIG_FILE`` or the instance folder."""
    explicit = environ.get(ENV_PREFIX + "CONFIG_FILE")
    return Path(explicit) if explicit else Path(instance_path) / CONFIG_FILE_NAME


def read_config_file(path: Path) -> dict[str, Any]:
    """Read the TOML instance file. Unknown keys are errors, so a typo is not silently ignored."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        setting = SETTINGS_BY_NAME.get(key.upper())
        if setting is None:
            known = ", ".join(s.name.lower() for s in SETTINGS)
            raise ConfigError(f"{path}: unknown setting {key!r}; known settings are {known}.")
        values[setting.name] = setting.parse(raw, str(path))
    return values


def load_config(
    instance_path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolve every setting and check the result.

    Returns a dict of upper-case names to values, plus ``CONFIG_FILE`` (the file that
    was looked for). Raises :class:`ConfigError` with one sentence when a value is
    wrong or a required secret is missing in production.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    path = config_file_path(instance_path, environ)
    values.update(read_config_file(path))
    setting: Setting | None  # a Setting here; below, a lookup by name that may miss
    for setting in SETTINGS:
        if setting.env_var in environ:
            values[setting.name] = setting.parse(environ[setting.env_var], "environment")
    extra: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            extra[key] = value  # Flask's own keys (TESTING, WTF_CSRF_ENABLED...) pass through.
        else:
            values[key] = value if value is None else setting.parse(value, "create_app(config)")
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'outcome.sqlite3'}"
    if not values["INSTRUMENTS_DIR"]:
        values["INSTRUMENTS_DIR"] = str(Path(instance_path) / "instruments")
    values["CONFIG_FILE"] = str(path)
    _check(values)
    values.update(extra)
    return values


def _check(values: dict[str, Any]) -> None:
    try:
        zoneinfo.ZoneInfo(values["TIMEZONE"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"OUTCOME_TIMEZONE {values['TIMEZONE']!r} is not an IANA time zone; "
            "set it to a name such as Europe/London or America/New_York."
        ) from None
    key = values["SECRET_KEY"]
    if values["ENV"] == "production":
        if not key:
            raise ConfigError(
                "OUTCOME_SECRET_KEY is not set; run `outcome config init` to write a random "
                f"one to the instance file, or set OUTCOME_SECRET_KEY to {MIN_SECRET_KEY_LENGTH}+ "
                "random characters."
            )
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"OUTCOME_SECRET_KEY is too short ({len(key)} characters); use at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters (`outcome config init` writes one)."
            )


def describe(values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Rows of (environment variable, shown value, meaning), secrets masked, for operators."""
    rows = []
    for setting in SETTINGS:
        value = values.get(setting.name)
        if setting.name == "DATABASE_URL" and value:
            shown = mask_url_password(str(value))
        elif setting.secret and value:
            shown = "(set)"
        else:
            shown = "" if value is None else str(value)
        rows.append((setting.env_var, shown, setting.doc))
    return rows


def mask_url_password(url: str) -> str:
    """Hide the password of a database URL, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
