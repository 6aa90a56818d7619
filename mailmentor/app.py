"""The application assembled from settings: mail accounts, identity, watched folders, and the
service's parts (intake, scheduler, sender over one writer and store).

Pure composition, no threads and no servers: the process layer (``workers/``) starts those and
hands in what only it has (the store it opened, the dramatiq dispatch, a sandbox mailbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from mailmentor.clock import Clock, SystemClock
from mailmentor.errors import ConfigError
from mailmentor.health_report import summary_line
from mailmentor.imap import ImapAccount, MessageMeta, append_message
from mailmentor.intake import Identity
from mailmentor.live_rules import LiveRules
from mailmentor.liveness import this_process
from mailmentor.mailbox_mode import Origin, Tracking
from mailmentor.oauth import AccessTokens, AuthorizationNeeded, TokenVault, provider_from
from mailmentor.parsing import parse_message
from mailmentor.parsing.pool import ParsePool, default_workers
from mailmentor.reminders import TEMPLATES_DIRNAME
from mailmentor.rules import Rules, default_rules_dir
from mailmentor.service.intake import Intake
from mailmentor.service.scheduler import Dispatch, Scheduler
from mailmentor.service.sender import Sender
from mailmentor.service.writer import Listener, LoopWriter
from mailmentor.settings import ENV_PREFIX, Settings, require_trust, secret_key
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store, open_store
from mailmentor.store.client import connect, tune_encodings
from mailmentor.store.health import read_health

log = logging.getLogger("mailmentor.run")

#: The addresses of the local demo mailbox, used when none are configured.
DEMO_SERVICE = "mentor@mailmentor.localhost"
DEMO_USER = "you@mailmentor.localhost"

#: A saved report-back draft: a draft (never sent by mailmentor), already read.
DRAFT_FLAGS = ("\\Draft", "\\Seen")


def oauth_account(settings: Settings) -> str:
    """The mailbox whose OAuth2 tokens IMAP and SMTP use (one sign-in covers both)."""
    return settings.imap_user or settings.smtp_user


def token_vault(settings: Settings, store: Store) -> TokenVault:
    """The user's OAuth2 tokens in ``store``, sealed under SECRET_KEY."""
    return TokenVault(store.client, store.ns, secret_key(settings))


def access_tokens(
    settings: Settings,
    store: Store,
    on_broken: Callable[[AuthorizationNeeded], None] | None = None,
) -> AccessTokens:
    """Fresh access tokens of the configured OAuth2 account, kept encrypted in ``store``;
    ``on_broken`` is told once when the provider refuses the authorisation."""
    provider = provider_from(settings)
    vault = token_vault(settings, store)
    hint = f"mailmentor connect {provider.name}"
    return AccessTokens(
        vault, provider, oauth_account(settings), connect_hint=hint, on_broken=on_broken
    )


def oauth_health(settings: Settings, store: Store) -> list[str]:
    """A line for the digest while the OAuth2 sign-in waits to be renewed."""
    if "oauth2" not in (settings.imap_auth, settings.smtp_auth):
        return []
    account = oauth_account(settings)
    vault = token_vault(settings, store)
    broken = vault.broken(account)
    if broken is None:
        return []
    since = broken[1].strftime("%Y-%m-%d %H:%M UTC")
    provider = settings.oauth_provider or "PROVIDER"
    return [
        f"mailmentor cannot sign in to {account} since {since}: run "
        f"`mailmentor connect {provider}`; new mail waits until then"
    ]


def reauthorization_notice(sender: Sender) -> Callable[[AuthorizationNeeded], None]:
    """``on_broken`` for a running service: mail the user, once, what to run (if SMTP still
    works, which it does when it signs in with a password)."""

    def tell(needed: AuthorizationNeeded) -> None:
        sender.notify_user(
            f"notice:oauth:{sender.clock.now().date().isoformat()}",
            "mailmentor needs you to sign in again",
            f"mailmentor can no longer sign in to your mailbox: {needed}.\n\n"
            "Until then new mail waits in your mailbox; nothing is lost, and it is read as "
            "soon as you have signed in again.",
        )

    return tell


def _token_source(
    settings: Settings,
    store: Store | None,
    what: str,
    on_broken: Callable[[AuthorizationNeeded], None] | None,
) -> AccessTokens:
    if store is None:
        raise ConfigError(f"{ENV_PREFIX}{what}_AUTH=oauth2: the tokens live in the store")
    return access_tokens(settings, store, on_broken)


def imap_account(
    settings: Settings,
    store: Store | None = None,
    on_broken: Callable[[AuthorizationNeeded], None] | None = None,
) -> ImapAccount:
    """The configured IMAP account (the watched folder included); with IMAP_AUTH=oauth2 it
    signs in with tokens from ``store`` (``on_broken``: see `access_tokens`)."""
    oauth = settings.imap_auth == "oauth2"
    return ImapAccount(
        host=settings.imap_host,
        port=settings.imap_port_or_default(),
        user=settings.imap_user,
        password=settings.imap_password.get_secret_value(),
        security=settings.imap_security,
        folder=settings.imap_folder,
        token=_token_source(settings, store, "IMAP", on_broken) if oauth else None,
    )


def smtp_account(settings: Settings, store: Store | None = None) -> SmtpAccount:
    """The configured SMTP account reminders are sent through (SMTP_AUTH=oauth2: as the
    OAuth2 account, with tokens from ``store``)."""
    oauth = settings.smtp_auth == "oauth2"
    user = (settings.smtp_user or oauth_account(settings)) if oauth else settings.smtp_user
    return SmtpAccount(
        host=settings.smtp_host,
        port=settings.smtp_port_or_default(),
        user=user or None,
        password=settings.smtp_password.get_secret_value() or None,
        security=settings.smtp_security,
        token=_token_source(settings, store, "SMTP", None) if oauth else None,
    )


def identity(settings: Settings) -> Identity:
    """Who the user and the service are; refuses settings that would trust forged mail."""
    require_trust(settings)  # fail closed, also for the demo mailbox
    return Identity(
        user_addresses=tuple(settings.user_addresses) or (DEMO_USER,),
        service_address=settings.service_address or DEMO_SERVICE,
        authserv_id=settings.authserv_id if settings.require_authentication else "",
    )


@dataclass(frozen=True)
class WatchedFolder:
    """One folder of the user's own mailbox and what an unmarked message in it means."""

    folder: str
    origin: Origin
    tracking: Tracking

    @property
    def is_sent(self) -> bool:
        """The user's Sent folder: their own mail, though no receiving server vouched for it."""
        return self.origin is Origin.SENT

    def origin_of(self, meta: MessageMeta) -> Origin:
        """A marked message (keyword, Gmail label) is tracked wherever it sits."""
        if self.origin is Origin.TRACKED or self.tracking.marks(meta.flags, meta.labels):
            return Origin.TRACKED
        return self.origin


def mailbox_folders(settings: Settings, inbox: str) -> list[WatchedFolder]:
    """The folders mailbox mode watches, in the order of their first catch-up.

    Marked threads first, then Sent, then INBOX: mail that piled up while mailmentor was down
    is read asks first, so a mentor's reply finds the loop it belongs to.
    """
    tracking = Tracking(keyword=settings.track_keyword, gmail_label=settings.track_gmail_label)
    folders = []
    if settings.track_folder:
        folders.append(WatchedFolder(settings.track_folder, Origin.TRACKED, tracking))
    folders.append(WatchedFolder(settings.sent_folder, Origin.SENT, tracking))
    folders.append(WatchedFolder(inbox, Origin.INBOX, tracking))
    return folders


def folder_meaning(settings: Settings, folder: str) -> WatchedFolder:
    """What mail in ``folder`` means in mailbox mode (for `mailmentor import`): a watched folder
    keeps its meaning; any other folder the user names is a hand-over, tracked whole."""
    tracking = Tracking(keyword=settings.track_keyword, gmail_label=settings.track_gmail_label)
    for watched in mailbox_folders(settings, settings.imap_folder):
        if watched.folder == folder:
            return watched
    return WatchedFolder(folder, Origin.TRACKED, tracking)


def drafts_saver(
    settings: Settings, account: ImapAccount | None, store: Store | None = None
) -> Callable[[EmailMessage], None] | None:
    """Service.drafts: APPEND to DRAFTS_FOLDER of the watched account; None when not set."""
    folder = settings.drafts_folder
    if not folder:
        return None
    if account is None and settings.imap_configured:
        account = imap_account(settings, store)
    if account is None:
        log.warning("MAILMENTOR_DRAFTS_FOLDER is set but there is no IMAP account: no drafts")
        return None
    target = account

    def save(message: EmailMessage) -> None:
        append_message(target, bytes(message), folder, DRAFT_FLAGS)

    return save


@dataclass
class Services:
    """The service's parts over one store: each entry point of the processes is one of these."""

    store: Store
    writer: LoopWriter
    intake: Intake
    scheduler: Scheduler
    sender: Sender
    owner: str


def build_services(
    settings: Settings,
    store: Store,
    dispatch: Dispatch,
    clock: Clock | None = None,
    *,
    rules: Callable[[], Rules] | None = None,
    templates_dir: Path | None = None,
    smtp: SmtpAccount | None = None,
    imap: ImapAccount | None = None,
    listeners: Sequence[Listener] = (),
    owner: str | None = None,
    parser: ParsePool | None = None,
) -> Services:
    """The service from settings over a given store and dispatch (workers, `mailmentor import`).

    ``rules``, ``smtp`` and ``imap`` override what settings say (`mailmentor run` shares its
    rules with the scheduler and may bring a local sink or demo mailbox).
    """
    if rules is None:
        live = LiveRules(settings.rules_dir or default_rules_dir())
        rules, templates_dir = live, live.directory / TEMPLATES_DIRNAME
    clock = clock or SystemClock()
    owner = owner or str(this_process())
    who = identity(settings)
    secret = secret_key(settings)
    writer = LoopWriter(store, rules, listeners)

    def alive(holder: str) -> bool:
        return store.health.process_alive([holder]).get(holder, False)

    sender = Sender(
        store,
        writer,
        rules,
        clock,
        who,
        secret,
        settings.tz,
        smtp_account(settings, store) if smtp is None else smtp,
        owner=owner,
        send_now=dispatch.send_later,
        alive=alive,
        drafts=drafts_saver(settings, imap, store),
        templates_dir=templates_dir,
        health=lambda: oauth_health(settings, store),
        health_line=lambda now: summary_line(read_health(store, settings), now),
    )
    intake = Intake(
        store,
        writer,
        who,
        secret,
        settings.tz,
        clock,
        context=sender.context,
        send_now=dispatch.send_later,
        owner=owner,
        parse=parse_message if parser is None else parser.parse,
        confirm=settings.confirm_commands,
    )
    scheduler = Scheduler(store, rules, clock, settings.tz, dispatch, owner)
    return Services(store, writer, intake, scheduler, sender, owner)


def parse_pool(settings: Settings) -> ParsePool:
    """The processes that parse fetched batches ahead (`PARSE_WORKERS`; started when first
    needed)."""
    workers = settings.parse_workers
    return ParsePool(default_workers() if workers is None else workers)


def connect_store(settings: Settings, url: str) -> Store:
    """The user's store on ``url``, with the client built for faults (timeouts, retries) and
    the server's small-structure encodings tuned; an older layout is migrated first."""
    client = connect(url)
    tune_encodings(client)
    return open_store(client, settings.user_id)
