"""All mailmentor exceptions: one base class and short chains below it."""

from __future__ import annotations

from dataclasses import dataclass

from mailmentor.liveness import describe_owner


class MailmentorError(Exception):
    """Base class for every error mailmentor raises on purpose."""


class ConfigError(MailmentorError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong in a rule file, located well enough for a person to fix it."""

    path: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class RulesError(MailmentorError):
    """A rule file (or directory) is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DurationError(MailmentorError, ValueError):
    """A duration such as ``3x`` could not be read."""


class ParseError(MailmentorError, ValueError):
    """A message could not be parsed at all (it is skipped, never fatal)."""


class UnprocessableMessage(MailmentorError):
    """A message mailmentor cannot use; it is skipped (and quarantined when configured)."""


class StoreError(MailmentorError):
    """The Redis store refused or lost an operation."""


class LoopNotFound(StoreError, KeyError):
    """No loop has that id."""


class StoreBusy(StoreError):
    """A change kept meeting concurrent changes of the same loop; trying again later will do."""


class StoreLayoutError(StoreError):
    """The data in Redis was written in a layout this version cannot read (or migrate)."""


class LeaseLost(StoreError):
    """A write was fenced off: the lease it depended on now belongs to another process."""


class MailboxError(MailmentorError, ConnectionError):
    """The IMAP server refused us or went away."""


class LoginError(MailboxError):
    """IMAP login failed (wrong user or password); retrying will not help."""


class MailboxUnreachable(MailboxError):
    """No IMAP connection could be made (host, port, network)."""


class MailboxTlsError(MailboxError):
    """TLS with the IMAP server failed, or STARTTLS is not offered (the security setting)."""


class FolderNotFound(MailboxError):
    """The server refused to open a folder (most often: it does not exist)."""


class SendError(MailmentorError):
    """Sending a message over SMTP failed."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class TemporarySendError(SendError, ConnectionError):
    """SMTP 4xx or a dropped connection: retry with backoff."""


class PermanentSendError(SendError):
    """SMTP 5xx: recorded on the loop, never retried."""


class SendBusy(SendError):
    """Another live process (or thread) is sending this item right now; check again later."""

    def __init__(self, key: str, holder: str) -> None:
        self.key = key
        self.holder = holder
        super().__init__(f"{key} is being sent by {describe_owner(holder)}")


class StoreUnavailable(MailmentorError):
    """The store could not take a message (or tell the checkpoint) right now; the watcher
    waits and tries again from the checkpoint."""

    def __init__(self, uid: int, cause: BaseException) -> None:
        self.uid = uid  # 0: not at a message (reading the checkpoint)
        self.cause = cause
        super().__init__(f"{self.where}: {type(cause).__name__}: {cause}")

    @property
    def where(self) -> str:
        return f"UID {self.uid}" if self.uid else "the checkpoint"
