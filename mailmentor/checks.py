"""`mailmentor check`: every configured connection tried once, one line each, what to fix.

Each check makes the connection the service would make (the same code), logs in, opens what
would be opened and leaves: nothing is read, marked, written or sent. A failure is classified
by the type of what was raised, never by its text, into the setting that most likely needs
changing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiosmtplib
import redis

from mailmentor.errors import (
    FolderNotFound,
    LoginError,
    MailboxError,
    MailboxTlsError,
    MailboxUnreachable,
    MailmentorError,
    TemporarySendError,
)
from mailmentor.imap.account import ImapAccount, connect, logout, scrub_secret
from mailmentor.oauth import AccessTokens, AuthorizationNeeded, OAuthError, OAuthUnavailable
from mailmentor.settings import ENV_PREFIX, Settings
from mailmentor.smtp import SmtpAccount, probe, tls_cause
from mailmentor.store.redis_urls import redact_url

if TYPE_CHECKING:
    from mailmentor.store import Store

#: The CLI's way to the store: the configured Redis, or the embedded one (started briefly when
#: it is not running); yields (URL, store).
OpenRedis = Callable[[Settings], AbstractContextManager[tuple[str, "Store"]]]


@dataclass(frozen=True)
class Passed:
    name: str
    detail: str


@dataclass(frozen=True)
class Failed:
    name: str
    problem: str
    fix: str


@dataclass(frozen=True)
class Skipped:
    name: str
    why: str


CheckResult = Passed | Failed | Skipped


def render(result: CheckResult) -> str:
    """The result's one line."""
    if isinstance(result, Passed):
        return f"ok    {result.name}: {result.detail}"
    if isinstance(result, Skipped):
        return f"skip  {result.name}: {result.why}"
    return f"FAIL  {result.name}: {result.problem}\n      fix: {result.fix}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- Redis ------------------------------------------------------------------------------------


def check_redis(settings: Settings, open_redis: OpenRedis) -> CheckResult:
    name = "redis"
    where = redact_url(settings.redis_url) if settings.redis_url else "embedded"
    try:
        with open_redis(settings) as (_url, store):
            info = store.client.info("server")
            version = info.get("redis_version", "?")
    except redis.AuthenticationError as exc:
        return Failed(name, f"{where} refused the login: {_one_line(exc)}", _redis_fix())
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        if settings.redis_url:
            return Failed(
                name,
                f"cannot reach {where}: {_one_line(exc)}",
                f"check {ENV_PREFIX}REDIS_URL (host, port, password, TLS) and that Redis runs",
            )
        return Failed(
            name,
            f"the embedded Redis of {settings.data_dir} did not start: {_one_line(exc)}",
            f"check that {ENV_PREFIX}DATA_DIR is writable, or set {ENV_PREFIX}REDIS_URL",
        )
    except redis.ResponseError as exc:
        return Failed(name, f"{where} answered an error: {_one_line(exc)}", _redis_fix())
    except MailmentorError as exc:
        return Failed(name, _one_line(exc), _redis_fix())
    return Passed(name, f"{where}, Redis {version}, user {settings.user_id}")


def _oauth_fix() -> str:
    return (
        f"check {ENV_PREFIX}OAUTH_CLIENT_ID, {ENV_PREFIX}OAUTH_CLIENT_SECRET and "
        f"{ENV_PREFIX}OAUTH_TENANT against the app you registered, and the network"
    )


def _redis_fix() -> str:
    return f"check the user and password in {ENV_PREFIX}REDIS_URL"


# -- IMAP -------------------------------------------------------------------------------------


def imap_folders(settings: Settings) -> list[tuple[str, str]]:
    """(setting, folder) for every folder the service opens."""
    from mailmentor.app import mailbox_folders

    if settings.mailbox_mode:
        named = {"SENT": "SENT_FOLDER", "INBOX": "IMAP_FOLDER", "TRACKED": "TRACK_FOLDER"}
        folders = [
            (named.get(w.origin.name, "IMAP_FOLDER"), w.folder)
            for w in mailbox_folders(settings, settings.imap_folder)
        ]
    else:
        folders = [("IMAP_FOLDER", settings.imap_folder)]
        if settings.quarantine_folder:
            folders.append(("QUARANTINE_FOLDER", settings.quarantine_folder))
    if settings.drafts_folder:
        folders.append(("DRAFTS_FOLDER", settings.drafts_folder))
    return folders


def check_imap(settings: Settings, account: ImapAccount) -> Iterator[CheckResult]:
    """The login (with the security setting), then every folder the service opens."""
    import dataclasses

    if not settings.imap_configured:
        yield Skipped("imap", f"{ENV_PREFIX}IMAP_HOST is not set (`run` uses a demo mailbox)")
        return
    where = f"{account.user}@{account.host}:{account.port} ({account.security})"
    try:
        client = connect(dataclasses.replace(account, folder="INBOX"), timeout=15)
    except AuthorizationNeeded as exc:
        yield Failed("imap login", _one_line(exc), "run `mailmentor connect`")
        return
    except OAuthError as exc:  # the provider, while getting a token (unavailable included)
        yield Failed("imap login", _one_line(exc), _oauth_fix())
        return
    except LoginError as exc:
        fix = (
            f"check that {ENV_PREFIX}IMAP_USER is the mailbox you connected, that the IMAP "
            "scope was granted, and that IMAP is enabled for the mailbox"
            if settings.imap_auth == "oauth2"
            else f"check {ENV_PREFIX}IMAP_USER and {ENV_PREFIX}IMAP_PASSWORD (many providers "
            "want an app password, or OAuth2 sign-in: IMAP_AUTH=oauth2, for IMAP)"
        )
        yield Failed("imap login", _one_line(exc), fix)
        return
    except MailboxTlsError as exc:
        yield Failed("imap login", _one_line(exc), _security_fix("IMAP", "993", "143"))
        return
    except MailboxUnreachable as exc:
        yield Failed(
            "imap login",
            _one_line(exc),
            f"check {ENV_PREFIX}IMAP_HOST and {ENV_PREFIX}IMAP_PORT, and that the network "
            "lets this machine reach them",
        )
        return
    except MailboxError as exc:
        yield Failed("imap login", _one_line(exc), "check the IMAP server's log for why")
        return
    try:
        idle = "IDLE" if client.has_capability("IDLE") else "no IDLE: polling"
        yield Passed("imap login", f"{where}, {idle}")
    finally:
        logout(client)
    for setting, folder in imap_folders(settings):
        yield _check_folder(dataclasses.replace(account, folder=folder), setting)


def _check_folder(account: ImapAccount, setting: str) -> CheckResult:
    name = f"imap folder {account.folder!r}"
    try:
        client = connect(account, timeout=15)
    except FolderNotFound as exc:
        return Failed(
            name,
            scrub_secret(_one_line(exc), account.password),
            f"create the folder in your mail client, or set {ENV_PREFIX}{setting} to one "
            "that exists",
        )
    except MailboxError as exc:
        return Failed(name, scrub_secret(_one_line(exc), account.password), "try again")
    logout(client)
    return Passed(name, f"opens ({ENV_PREFIX}{setting})")


def _security_fix(what: str, tls_port: str, plain_port: str) -> str:
    return (
        f"check {ENV_PREFIX}{what}_SECURITY and {ENV_PREFIX}{what}_PORT: ssl for port "
        f"{tls_port} (TLS from the start), starttls for port {plain_port}, and that the "
        "server's certificate is valid for the host name"
    )


# -- SMTP -------------------------------------------------------------------------------------


def check_smtp(settings: Settings, account: SmtpAccount) -> CheckResult:
    """Connect, TLS as configured, log in when a user is set, and QUIT: no mail is sent."""
    name = "smtp"
    if not settings.smtp_configured:
        return Skipped(name, f"{ENV_PREFIX}SMTP_HOST is not set (`run` uses a local sink)")
    where = f"{account.host}:{account.port} ({account.security})"
    try:
        asyncio.run(probe(account))
    except TemporarySendError as exc:  # the OAuth2 sign-in (smtp._oauth2_login)
        return Failed(
            name,
            _scrub(_one_line(exc), account),
            "run `mailmentor connect`"
            if isinstance(exc.__context__, AuthorizationNeeded)
            else f"check that the SMTP scope was granted and SMTP AUTH is enabled for "
            f"{account.user}; {_oauth_fix()}",
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        return Failed(
            name,
            _scrub(f"{where} refused the login: {exc.code} {exc.message}", account),
            f"check {ENV_PREFIX}SMTP_USER and {ENV_PREFIX}SMTP_PASSWORD",
        )
    except Exception as exc:
        tls = tls_cause(exc)
        if tls is not None or isinstance(exc, ssl.SSLError | aiosmtplib.SMTPNotSupported):
            return Failed(
                name,
                _scrub(f"{where}: TLS failed: {_one_line(tls or exc)}", account),
                _security_fix("SMTP", "465", "587"),
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return Failed(
                name,
                _scrub(f"{where} answered {exc.code} {exc.message}", account),
                "check the SMTP server's log for why",
            )
        return Failed(
            name,
            _scrub(f"cannot reach {where}: {_one_line(exc)}", account),
            f"check {ENV_PREFIX}SMTP_HOST and {ENV_PREFIX}SMTP_PORT, and that the network "
            "lets this machine reach them",
        )
    login = f"logged in as {account.user}" if account.user else "no login configured"
    return Passed(name, f"{where}, {login}")


def _scrub(text: str, account: SmtpAccount) -> str:
    return scrub_secret(text, account.password or "")


# -- OAuth2 -----------------------------------------------------------------------------------


def check_tokens(tokens: AccessTokens) -> CheckResult:
    """A real refresh of the access token (the refresh token rotates as it would in use)."""
    name = "oauth2"
    who = f"{tokens.account} at {tokens.provider.name}"
    try:
        fresh = tokens.refresh(force=True)
    except AuthorizationNeeded as exc:
        return Failed(name, _one_line(exc), f"run `mailmentor connect {tokens.provider.name}`")
    except OAuthUnavailable as exc:
        return Failed(
            name, _one_line(exc), "check the network, and the provider's status page; try again"
        )
    except OAuthError as exc:
        return Failed(
            name,
            _one_line(exc),
            f"check {ENV_PREFIX}OAUTH_CLIENT_ID and {ENV_PREFIX}OAUTH_CLIENT_SECRET (and "
            f"{ENV_PREFIX}OAUTH_TENANT for Microsoft) against the app you registered",
        )
    except MailmentorError as exc:
        return Failed(name, _one_line(exc), f"run `mailmentor connect {tokens.provider.name}`")
    until = fresh.expires_at.strftime("%H:%M UTC")
    return Passed(name, f"{who}: token refreshed, valid until {until}")


# -- all --------------------------------------------------------------------------------------


def run_checks(
    settings: Settings,
    open_redis: OpenRedis,
    imap: ImapAccount,
    smtp: SmtpAccount,
    tokens: AccessTokens | None = None,
) -> Iterator[CheckResult]:
    """Redis, then the OAuth2 token (when signing in so), IMAP and SMTP."""
    yield check_redis(settings, open_redis)
    if tokens is not None:
        yield check_tokens(tokens)
    yield from check_imap(settings, imap)
    yield check_smtp(settings, smtp)
