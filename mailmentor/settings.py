"""Configuration from MAILMENTOR_* environment variables, a .env file and a secrets directory.

Everything has a sensible default so `mailmentor demo` and `mailmentor run` start with no
configuration at all; what a real deployment must set is checked by `require_*`, which name
the variable at fault.
"""

from __future__ import annotations

import difflib
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mailmentor.errors import ConfigError

log = logging.getLogger("mailmentor.settings")

Security = Literal["ssl", "starttls", "none"]
Auth = Literal["password", "oauth2"]
ENV_PREFIX = "MAILMENTOR_"
SECRETS_DIR_ENV = "MAILMENTOR_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("mailmentor"))


class Settings(BaseSettings):
    """All settings; names are the environment variables without the MAILMENTOR_ prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
    )

    imap_host: str = ""
    imap_port: int = Field(default=0, ge=0, le=65535)
    imap_user: str = ""
    imap_password: SecretStr = SecretStr("")
    imap_security: Security = "ssl"
    #: How to sign in to IMAP: the password, or OAuth2 (XOAUTH2; `mailmentor connect` first).
    imap_auth: Auth = "password"
    imap_folder: str = "INBOX"
    #: IDLE is renewed (and the mailbox re-checked) this often; RFC 2177 allows up to 29 min.
    imap_idle_renew: float = Field(default=540.0, gt=0, le=1740)
    #: Messages the watcher could not handle are moved to this folder; empty: left in place.
    quarantine_folder: str = ""
    #: The reminder to report back also puts a starter draft in this folder of the watched
    #: account (e.g. Drafts; Gmail: "[Gmail]/Drafts"), never sent by mailmentor; empty: no drafts.
    drafts_folder: str = ""

    # Mailbox mode: watch the user's own mailbox (IMAP_FOLDER is then their INBOX).
    #: Every thread in this folder is tracked (on Gmail a label is also a folder).
    track_folder: str = ""
    #: Messages with this IMAP keyword (e.g. $mentor) are tracked, in INBOX and Sent.
    track_keyword: str = ""
    #: Messages with this Gmail label (read through X-GM-LABELS) are tracked.
    track_gmail_label: str = ""
    #: The user's sent mail (Gmail: "[Gmail]/Sent Mail"): their follow-ups in tracked threads.
    sent_folder: str = "Sent"
    #: Declared after the fields it checks, so its validator sees them.
    mailbox_mode: bool = False

    smtp_host: str = ""
    smtp_port: int = Field(default=0, ge=0, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_security: Security = "starttls"
    smtp_auth: Auth = "password"

    #: OAuth2 sign-in (IMAP_AUTH / SMTP_AUTH oauth2): microsoft, google or generic.
    oauth_provider: str = ""
    #: The application registered with the provider (README, "Signing in with OAuth2").
    oauth_client_id: str = ""
    oauth_client_secret: SecretStr = SecretStr("")
    #: Microsoft: the directory (tenant) id or domain; "common" lets any account sign in.
    oauth_tenant: str = "common"
    #: The generic provider's endpoints; OAUTH_SCOPES overrides any provider's scopes.
    oauth_authorization_url: str = ""
    oauth_token_url: str = ""
    oauth_device_url: str = ""
    oauth_scopes: str = ""

    service_address: str = ""
    user_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Also require the receiving server (AUTHSERV_ID) to have verified the user's mail.
    require_authentication: bool = False
    #: That server's authserv-id in Authentication-Results, e.g. mx.fastmail.com; commas for more.
    authserv_id: str = ""

    redis_url: str = ""
    #: Whose data this is: every key lives under mm:u:<USER_ID>:, so several users can share
    #: one Redis (give each deployment its own id).
    user_id: str = "default"
    data_dir: Path = Field(default_factory=default_data_dir)
    rules_dir: Path | None = None
    timezone: str = "UTC"
    #: Answer every reply of commands with a one-line confirmation (refusals are always answered).
    confirm_commands: bool = True
    secret_key: SecretStr = SecretStr("")

    scheduler_interval: float = Field(default=1.0, gt=0)
    #: Every process (and each watcher) renews its heartbeat six times per this many seconds;
    #: one older than this counts as stopped (`status --check`; claims of the dead come back).
    heartbeat_seconds: float = Field(default=30.0, ge=1.0, le=3600)
    worker_threads: int = Field(default=2, ge=1, le=64)
    #: Processes that parse fetched mail ahead of intake; empty: one fewer than the cores
    #: (at most 4), 0: parse in the watcher's thread.
    parse_workers: int | None = Field(default=None, ge=0, le=32)

    @field_validator("user_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("user_addresses")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            _check_address(address)
        return [a.strip().lower() for a in value]

    @field_validator("service_address")
    @classmethod
    def _check_service(cls, value: str) -> str:
        if value:
            _check_address(value)
        return value.strip().lower()

    @field_validator("authserv_id")
    @classmethod
    def _check_authserv_id(cls, value: str) -> str:
        ids = [part.strip().lower() for part in value.split(",") if part.strip()]
        for found in ids:
            if any(c.isspace() or c in ';="()' for c in found):
                raise ValueError(
                    f"{found!r} is not an authserv-id (use a name like mx.example.com)"
                )
        return ",".join(ids)

    @field_validator("track_keyword")
    @classmethod
    def _check_keyword(cls, value: str) -> str:
        value = value.strip()
        bad = [c for c in value if c.isspace() or ord(c) < 0x20 or c in '(){%*"]\x7f']
        if bad or "\\" in value[1:] or not value.isascii():
            raise ValueError(
                f"{value!r} is not an IMAP keyword (use a plain word like $mentor or mentor)"
            )
        return value

    @field_validator("user_id")
    @classmethod
    def _check_user_id(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() or c in ":*?[]" for c in value):
            raise ValueError(f"{value!r}: use letters, digits and . - _ @ (no spaces or colons)")
        return value

    @field_validator("track_folder", "track_gmail_label", "sent_folder")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("mailbox_mode")
    @classmethod
    def _check_mailbox_mode(cls, value: bool, info: ValidationInfo) -> bool:
        if not value:
            return value
        data = info.data
        if not any(
            data.get(name) for name in ("track_folder", "track_keyword", "track_gmail_label")
        ):
            raise ValueError(
                f"needs {ENV_PREFIX}TRACK_FOLDER, {ENV_PREFIX}TRACK_KEYWORD or"
                f" {ENV_PREFIX}TRACK_GMAIL_LABEL (how you mark the threads to track)"
            )
        folders = {
            "IMAP_FOLDER": data.get("imap_folder", ""),
            "SENT_FOLDER": data.get("sent_folder", ""),
            "TRACK_FOLDER": data.get("track_folder", ""),
        }
        if not folders["SENT_FOLDER"]:
            raise ValueError(f"needs {ENV_PREFIX}SENT_FOLDER (your sent mail folder)")
        seen: dict[str, str] = {}
        for name, folder in folders.items():
            key = _folder_key(folder)
            if key and key in seen:
                raise ValueError(
                    f"{ENV_PREFIX}{seen[key]} and {ENV_PREFIX}{name} are the same folder"
                    f" ({folder!r}); each folder is watched once"
                )
            if key:
                seen[key] = name
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use a name like Europe/Berlin)"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def imap_configured(self) -> bool:
        return bool(self.imap_host)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    def imap_port_or_default(self) -> int:
        return self.imap_port or {"ssl": 993, "starttls": 143, "none": 143}[self.imap_security]

    def smtp_port_or_default(self) -> int:
        return self.smtp_port or {"ssl": 465, "starttls": 587, "none": 25}[self.smtp_security]


def _folder_key(folder: object) -> str:
    """Folder names compare as the server does: INBOX in any case is INBOX."""
    name = str(folder or "").strip()
    return "INBOX" if name.upper() == "INBOX" else name


def _check_address(address: str) -> None:
    local, at, domain = address.strip().rpartition("@")
    bad_domain = "." not in domain and domain != "localhost"
    if not at or not local or bad_domain or " " in address.strip():
        raise ValueError(f"{address!r} is not an email address")


def load_settings(**overrides: Any) -> Settings:
    """Read settings; every invalid value is a line of one ConfigError naming its variable
    (all of them at once, not one per start), and a MAILMENTOR_ variable that is no setting
    (a typo) is warned about, with the setting it probably meant."""
    secrets_dir = Path(os.environ.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR))
    for line in unknown_variables(os.environ, _dotenv_names()):
        log.warning("%s", line)
    try:
        return Settings(
            _secrets_dir=secrets_dir if secrets_dir.is_dir() else None,  # type: ignore[call-arg]
            **overrides,
        )
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{ENV_PREFIX}{field.upper()}: {message}")
        raise ConfigError("\n".join(dict.fromkeys(lines))) from None


def _dotenv_names() -> list[str]:
    """The names a .env file in the working directory sets (as Settings reads it)."""
    path = Path(".env")
    if not path.is_file():
        return []
    try:
        from dotenv import dotenv_values

        return [name for name in dotenv_values(path) if name]
    except Exception:  # an unreadable .env is reported by Settings itself
        return []


def unknown_variables(environ: Mapping[str, str], dotenv: Iterable[str] = ()) -> list[str]:
    """One line per MAILMENTOR_* name that is no setting, with the likeliest meant one."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    known.add(SECRETS_DIR_ENV)
    lines = []
    for name in sorted({*(n.upper() for n in environ), *(n.upper() for n in dotenv)}):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{name} is not a mailmentor setting and is ignored{hint}")
    return lines


def require_mail_accounts(settings: Settings) -> None:
    """A real deployment needs these; the demo mailbox does not."""
    oauth = settings.imap_auth == "oauth2"
    needed = {
        "IMAP_USER": settings.imap_user,
        "IMAP_PASSWORD": "(OAuth2)" if oauth else settings.imap_password.get_secret_value(),
        "OAUTH_PROVIDER": settings.oauth_provider if oauth else "(password)",
        "OAUTH_CLIENT_ID": settings.oauth_client_id if oauth else "(password)",
        "SMTP_HOST": settings.smtp_host,
        "SERVICE_ADDRESS": settings.service_address,
        "USER_ADDRESSES": ",".join(settings.user_addresses),
    }
    missing = []
    for name, value in needed.items():
        if not value:
            because = (
                f"{ENV_PREFIX}IMAP_AUTH is oauth2"
                if name.startswith("OAUTH_")
                else f"{ENV_PREFIX}IMAP_HOST is set"
            )
            missing.append(f"{ENV_PREFIX}{name}: missing (needed because {because})")
    if missing:  # all of them at once: one start to learn what to set
        raise ConfigError("\n".join(missing))
    require_trust(settings)


def require_trust(settings: Settings) -> None:
    """Requiring authentication with no server to trust would silently check nothing."""
    if settings.require_authentication and not settings.authserv_id:
        raise ConfigError(
            f"{ENV_PREFIX}AUTHSERV_ID: missing"
            " (needed because MAILMENTOR_REQUIRE_AUTHENTICATION is on)"
        )


def secret_key(settings: Settings) -> bytes:
    """SECRET_KEY if given, else one generated once and kept in DATA_DIR so tokens survive."""
    given = settings.secret_key.get_secret_value()
    if given:
        return given.encode()
    path = settings.data_dir / "secret_key"
    try:
        if path.exists():
            return _stored_key(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process started at the same moment and won
            return _stored_key(path)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key.encode()
    except OSError as exc:
        raise ConfigError(
            f"{ENV_PREFIX}DATA_DIR: cannot keep the secret key in {path}: {exc}"
        ) from exc


def _stored_key(path: Path) -> bytes:
    """An empty key would make every loop token guessable, so it is refused, never used."""
    key = path.read_text().strip().encode()
    if not key:
        raise ConfigError(
            f"{ENV_PREFIX}DATA_DIR: the secret key file {path} is empty; delete it to make a new"
            " one (open loops' reply tokens will change) or set MAILMENTOR_SECRET_KEY"
        )
    return key
