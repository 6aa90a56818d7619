"""The application assembled from settings: mail accounts, identity, watched folders, Service.

Pure composition, no threads and no servers: the process layer (``workers/``) starts those and
hands in what only it has (the store it opened, the dramatiq outbox, a sandbox mailbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from mailmentor.clock import Clock, SystemClock
from mailmentor.imap import ImapAccount, MessageMeta, append_message
from mailmentor.intake import Identity
from mailmentor.live_rules import LiveRules
from mailmentor.mailbox_mode import Origin, Tracking
from mailmentor.reminders import TEMPLATES_DIRNAME
from mailmentor.rules import default_rules_dir
from mailmentor.service import Listener, Outbox, Service
from mailmentor.settings import Settings, require_trust, secret_key
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store

log = logging.getLogger("mailmentor.run")

#: The addresses of the local demo mailbox, used when none are configured.
DEMO_SERVICE = "mentor@mailmentor.localhost"
DEMO_USER = "you@mailmentor.localhost"

#: A saved report-back draft: a draft (never sent by mailmentor), already read.
DRAFT_FLAGS = ("\\Draft", "\\Seen")


def imap_account(settings: Settings) -> ImapAccount:
    """The configured IMAP account (the watched folder included)."""
    return ImapAccount(
        host=settings.imap_host,
        port=settings.imap_port_or_default(),
        user=settings.imap_user,
        password=settings.imap_password.get_secret_value(),
        security=settings.imap_security,
        folder=settings.imap_folder,
    )


def smtp_account(settings: Settings) -> SmtpAccount:
    """The configured SMTP account reminders are sent through."""
    return SmtpAccount(
        host=settings.smtp_host,
        port=settings.smtp_port_or_default(),
        user=settings.smtp_user or None,
        password=settings.smtp_password.get_secret_value() or None,
        security=settings.smtp_security,
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
    settings: Settings, account: ImapAccount | None
) -> Callable[[EmailMessage], None] | None:
    """Service.drafts: APPEND to DRAFTS_FOLDER of the watched account; None when not set."""
    folder = settings.drafts_folder
    if not folder:
        return None
    if account is None and settings.imap_configured:
        account = imap_account(settings)
    if account is None:
        log.warning("MAILMENTOR_DRAFTS_FOLDER is set but there is no IMAP account: no drafts")
        return None
    target = account

    def save(message: EmailMessage) -> None:
        append_message(target, bytes(message), folder, DRAFT_FLAGS)

    return save


def build_service(
    settings: Settings,
    store: Store,
    outbox: Outbox,
    clock: Clock | None = None,
    *,
    rules: LiveRules | None = None,
    smtp: SmtpAccount | None = None,
    imap: ImapAccount | None = None,
    listeners: Sequence[Listener] = (),
) -> Service:
    """A Service from settings over a given store and outbox (workers, `mailmentor import`).

    ``rules``, ``smtp`` and ``imap`` override what settings say (`mailmentor run` shares its
    rules with the scheduler and may bring a local sink or demo mailbox).
    """
    if rules is None:
        rules = LiveRules(settings.rules_dir or default_rules_dir())
    return Service(
        store=store,
        rules=rules,
        clock=clock or SystemClock(),
        identity=identity(settings),
        secret=secret_key(settings),
        timezone=settings.tz,
        outbox=outbox,
        smtp=smtp_account(settings) if smtp is None else smtp,
        listeners=list(listeners),
        drafts=drafts_saver(settings, imap),
        templates_dir=rules.directory / TEMPLATES_DIRNAME,
    )
