"""Per-loop HMAC tokens carried in reminder addresses and Message-IDs.

A reply to a reminder is only trusted to change a loop when it names the loop *and* carries the
token that only the service (holding the secret) can compute; that stops a forged or stray mail
from closing someone's loop. Everything here is pure and never raises on hostile input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.utils import parseaddr

TOKEN_LENGTH = 10
#: Loop ids are short base32 words; the parser accepts a little more so ids from elsewhere survive.
_LOOP_ID = r"[a-z0-9]{1,64}"
_TOKEN = rf"[a-z2-7]{{{TOKEN_LENGTH}}}"
_REPLY_TAG = re.compile(rf"r-({_LOOP_ID})-({_TOKEN})")
_MESSAGE_ID = re.compile(rf"mm\.({_LOOP_ID})\.[0-9a-f]{{12}}\.({_TOKEN})@[^\s@<>]+")


def loop_token(secret: bytes, loop_id: str) -> str:
    """The 10-character token for a loop: HMAC-SHA256 of its id, base32, lower case."""
    digest = hmac.new(secret, loop_id.lower().encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:TOKEN_LENGTH].lower()


def verify_token(secret: bytes, loop_id: str, token: str) -> bool:
    """Whether ``token`` belongs to ``loop_id``; constant-time, case-insensitive, never raises."""
    if not isinstance(token, str) or not isinstance(loop_id, str) or not loop_id:
        return False
    try:
        given = token.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, loop_token(secret, loop_id).encode("ascii"))


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().rpartition("@")
    return local, domain


def _tag_separator(service_local: str) -> str:
    """'+' for a plain mailbox; '-' when the service already is a plus address.

    Providers deliver everything after the first '+' to the same mailbox, so a second '+' is
    avoided: ``me+mentor`` becomes ``me+mentor-r-…``.
    """
    return "-" if "+" in service_local else "+"


def tagged_address(service_address: str, tag: str) -> str:
    """The service address with a tag: ``mentor+learn@`` (``me+mentor-learn@`` for a plus one)."""
    local, domain = _split(service_address)
    return f"{local}{_tag_separator(local)}{tag}@{domain}"


def reply_address(service_address: str, loop_id: str, secret: bytes) -> str:
    """The Reply-To of a loop's reminders: the service address tagged with loop id and token."""
    return tagged_address(service_address, f"r-{loop_id.lower()}-{loop_token(secret, loop_id)}")


def _service_tag(address: str, service_address: str) -> str | None:
    """The tag of ``address`` when it is the service address with one (lower case), else None."""
    if not isinstance(address, str) or not isinstance(service_address, str):
        return None
    bare = parseaddr(address)[1] if ("<" in address or '"' in address) else address
    local, domain = _split(bare.lower())
    service_local, service_domain = _split(service_address.lower())
    if not local or not service_local or domain != service_domain:
        return None
    prefix = service_local + _tag_separator(service_local)
    return local[len(prefix) :] if local.startswith(prefix) else None


def parse_reply_address(address: str, service_address: str) -> tuple[str, str] | None:
    """(loop_id, token) when ``address`` is a reply address of this service, else None.

    Accepts a bare address or a header value such as ``"mailmentor" <…>``; case-insensitive.
    The token is returned unchecked: call :func:`verify_token`.
    """
    tag = _service_tag(address, service_address)
    match = _REPLY_TAG.fullmatch(tag) if tag is not None else None
    return (match.group(1), match.group(2)) if match else None


def reminder_message_id(loop_id: str, action_key: str, secret: bytes, domain: str) -> str:
    """A deterministic Message-ID (no angle brackets) so a retried send reuses it.

    It carries the loop id and token, so a reply threaded to a reminder names its loop even when
    the mail client drops the Reply-To.
    """
    action_hash = hashlib.sha256(action_key.encode("utf-8")).hexdigest()[:12]
    return f"mm.{loop_id.lower()}.{action_hash}.{loop_token(secret, loop_id)}@{domain.lower()}"


def parse_reminder_message_id(message_id: str) -> tuple[str, str] | None:
    """(loop_id, token) from a Message-ID written by :func:`reminder_message_id`, else None."""
    if not isinstance(message_id, str):
        return None
    cleaned = message_id.strip().strip("<>").strip().lower()
    match = _MESSAGE_ID.fullmatch(cleaned)
    return (match.group(1), match.group(2)) if match else None


# -- the weekly digest ----------------------------------------------------------------------------
#
# A reply to a digest ("2 done") names lines of that digest; the digest's Reply-To and
# Message-ID carry its id and a token, so a reply is trusted only for a digest the service sent.

_DIGEST_ID = r"[a-z0-9]{1,32}"
_DIGEST_TAG = re.compile(rf"d-({_DIGEST_ID})-({_TOKEN})")
_DIGEST_MESSAGE_ID = re.compile(rf"mm\.digest\.({_DIGEST_ID})\.({_TOKEN})@[^\s@<>]+")


def digest_id(secret: bytes, slot: str, user_address: str) -> str:
    """The id of the digest of one week (``slot``: its scheduled moment) for one user."""
    seed = f"digest\n{slot}\n{user_address.lower()}".encode()
    digest = hmac.new(secret, seed, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:12].lower()


def digest_token(secret: bytes, digest: str) -> str:
    return loop_token(secret, f"digest-{digest}")


def verify_digest_token(secret: bytes, digest: str, token: str) -> bool:
    return bool(digest) and verify_token(secret, f"digest-{digest}", token)


def digest_reply_address(service_address: str, digest: str, secret: bytes) -> str:
    """The Reply-To of a digest: the service address tagged with the digest's id and token."""
    return tagged_address(service_address, f"d-{digest}-{digest_token(secret, digest)}")


def digest_message_id(digest: str, secret: bytes, domain: str) -> str:
    """The digest's Message-ID (no angle brackets): the same for a retried send."""
    return f"mm.digest.{digest}.{digest_token(secret, digest)}@{domain.lower()}"


def parse_digest_address(address: str, service_address: str) -> tuple[str, str] | None:
    """(digest id, token) when ``address`` is a digest's Reply-To, else None (unchecked)."""
    tag = _service_tag(address, service_address)
    match = _DIGEST_TAG.fullmatch(tag) if tag is not None else None
    return (match.group(1), match.group(2)) if match else None


def parse_digest_message_id(message_id: str) -> tuple[str, str] | None:
    """(digest id, token) from a digest's Message-ID, else None (unchecked)."""
    if not isinstance(message_id, str):
        return None
    match = _DIGEST_MESSAGE_ID.fullmatch(message_id.strip().strip("<>").strip().lower())
    return (match.group(1), match.group(2)) if match else None
