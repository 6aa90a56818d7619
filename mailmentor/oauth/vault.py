"""Tokens kept encrypted at rest, under the user's namespace in the store.

One Redis string per account holds the whole token set, encrypted with Fernet (AES-128-CBC and
an HMAC, from `cryptography`) under a key derived from SECRET_KEY with HKDF. Writing it is one
SET, so a rotated refresh token replaces the old one atomically. Tokens are never logged.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import redis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailmentor.errors import StoreError
from mailmentor.oauth.endpoints import OAuthError
from mailmentor.store.keys import Namespace


@dataclass(frozen=True)
class TokenSet:
    """What a provider gave for one account; times are UTC."""

    account: str
    provider: str
    access_token: str
    expires_at: datetime
    refresh_token: str
    scope: str
    connected_at: datetime
    refreshed_at: datetime

    def __repr__(self) -> str:  # never the tokens
        return (
            f"TokenSet(account={self.account!r}, provider={self.provider!r}, "
            f"expires_at={self.expires_at.isoformat()}, scope={self.scope!r})"
        )

    def valid_for(self, now: datetime) -> float:
        """Seconds the access token has left."""
        return (self.expires_at - now).total_seconds()

    def refreshed(self, answer: dict[str, object], now: datetime) -> TokenSet:
        """The set after a token answer (a provider may or may not rotate the refresh token)."""
        if not answer.get("access_token"):
            raise OAuthError("the token endpoint answered without an access_token")
        return replace(
            self,
            access_token=str(answer["access_token"]),
            expires_at=expires(answer, now),
            refresh_token=str(answer.get("refresh_token") or self.refresh_token),
            scope=str(answer.get("scope") or self.scope),
            refreshed_at=now,
        )


def expires(answer: dict[str, object], now: datetime) -> datetime:
    """When an access token of this answer expires (``expires_in``; an hour if it is missing)."""
    try:
        seconds = float(str(answer.get("expires_in", 3600)))
    except ValueError:
        seconds = 3600.0
    return datetime.fromtimestamp(now.timestamp() + seconds, UTC)


def _key(secret: bytes, user_id: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"mailmentor oauth tokens", info=user_id.encode()
    ).derive(secret)
    return base64.urlsafe_b64encode(derived)


class TokenVault:
    """The encrypted token sets of one user's accounts."""

    def __init__(self, client: redis.Redis, ns: Namespace, secret: bytes) -> None:
        self._r = client
        self._ns = ns
        self._fernet = Fernet(_key(secret, ns.user))

    def key(self, account: str) -> str:
        return self._ns.key("oauth", account.lower())

    def lock_key(self, account: str) -> str:
        return self._ns.key("oauth-refresh", account.lower())

    def broken_key(self, account: str) -> str:
        return self._ns.key("oauth-broken", account.lower())

    def notice_key(self, account: str) -> str:
        return self._ns.key("oauth-noticed", account.lower())

    def save(self, tokens: TokenSet) -> None:
        """Keep ``tokens`` (replacing the set before in one step); a broken mark goes with it."""
        data = asdict(tokens)
        for name in ("expires_at", "connected_at", "refreshed_at"):
            data[name] = data[name].isoformat()
        sealed = self._fernet.encrypt(json.dumps(data).encode())
        with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self.key(tokens.account), sealed)
            pipe.delete(self.broken_key(tokens.account), self.notice_key(tokens.account))
            pipe.execute()

    def mark_broken(self, account: str, reason: str, now: datetime) -> bool:
        """The provider refused the authorisation: remember it (and since when) until the next
        `connect`; True for the first process to notice."""
        value = json.dumps({"reason": reason, "since": now.isoformat()})
        return bool(self._r.set(self.broken_key(account), value, nx=True))

    def take_notice(self, account: str) -> bool:
        """True once per refusal (until the next save): the user is told of it once."""
        return bool(self._r.set(self.notice_key(account), "1", nx=True))

    def broken(self, account: str) -> tuple[str, datetime] | None:
        """(why, since when) while the authorisation needs renewing, else None."""
        raw = self._r.get(self.broken_key(account))
        if raw is None:
            return None
        data = json.loads(raw)
        return str(data["reason"]), datetime.fromisoformat(data["since"])

    def load(self, account: str) -> TokenSet | None:
        raw = self._r.get(self.key(account))
        if raw is None:
            return None
        try:
            data = json.loads(self._fernet.decrypt(raw))
            for name in ("expires_at", "connected_at", "refreshed_at"):
                data[name] = datetime.fromisoformat(data[name])
            return TokenSet(**data)
        except InvalidToken:
            raise StoreError(
                f"the OAuth2 tokens of {account} were encrypted under another SECRET_KEY: "
                f"run `mailmentor connect` again (or restore that key)"
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(f"the OAuth2 tokens of {account} are unreadable: {exc}") from None

    def delete(self, account: str) -> bool:
        keys = (self.key(account), self.broken_key(account), self.notice_key(account))
        return bool(self._r.delete(*keys))

    def take_refresh_lock(self, account: str, owner: str, ttl_ms: int) -> bool:
        """One refresh of ``account`` at a time, across processes; False: someone has it."""
        return bool(self._r.set(self.lock_key(account), owner, nx=True, px=ttl_ms))

    def release_refresh_lock(self, account: str, owner: str) -> None:
        """Release it if it is still ``owner``'s (compare and delete in one step)."""
        self._r.eval(_RELEASE, 1, self.lock_key(account), owner)


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
