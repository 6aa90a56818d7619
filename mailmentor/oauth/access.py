"""A fresh access token before every login, refreshed shortly before it expires.

The watcher, the send workers and `mailmentor check` may run in different processes and all
refresh the same account. Providers rotate refresh tokens (the old one stops working once the
new one is issued), so two refreshes at once would leave one process with a dead token: a
refresh happens under a Redis lock held longer than a token request can take, whoever gets the
lock second finds the token already fresh in the vault and uses it, and a refusal of a refresh
token that the vault has since replaced is not taken for a revocation.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from mailmentor.clock import Clock, SystemClock
from mailmentor.errors import StoreError
from mailmentor.oauth.endpoints import TIMEOUT, AuthorizationNeeded, OAuthUnavailable, post_form
from mailmentor.oauth.providers import Provider
from mailmentor.oauth.vault import TokenSet, TokenVault

log = logging.getLogger("mailmentor.oauth")

#: An access token with less than this left (seconds) is refreshed before it is used.
REFRESH_BEFORE = 300.0
#: How long one process may hold the refresh lock: well over a token request's time limit.
LOCK_TTL_MS = int(TIMEOUT * 3 * 1000)


class AccessTokens:
    """``token()``: the account's access token, refreshed when due; raises AuthorizationNeeded
    when there is none or the provider revoked it, OAuthUnavailable when it cannot be reached.

    ``on_broken`` (the running service's watcher: mail the user) is called once per outage,
    by whichever process with one sees the refusal first, whoever noticed it."""

    def __init__(
        self,
        vault: TokenVault,
        provider: Provider,
        account: str,
        clock: Clock | None = None,
        *,
        connect_hint: str = "mailmentor connect",
        on_broken: Callable[[AuthorizationNeeded], None] | None = None,
    ) -> None:
        self.vault = vault
        self.provider = provider
        self.account = account
        self.clock = clock or SystemClock()
        self.connect_hint = connect_hint
        self.on_broken = on_broken
        #: A refreshed set the store could not take: the provider has rotated the refresh
        #: token already, so it is kept here and saved at the next use.
        self._unsaved: TokenSet | None = None

    def usable(self) -> bool:
        """Whether a login is worth trying: connected, and not refused since (store reads
        only, never the provider)."""
        try:
            return self.vault.broken(self.account) is None and self._stored_or_none() is not None
        except StoreError:
            return False

    def renewed(self) -> str:
        """A new access token, for one a server refused (the callers have told a dropped
        connection from a refusal, and retry with backoff: no refresh storm)."""
        return self.refresh(force=True).access_token

    def token(self) -> str:
        self._check_not_broken()
        tokens = self._stored()
        if tokens.valid_for(self.clock.now()) > REFRESH_BEFORE:
            return tokens.access_token
        return self.refresh().access_token

    def refresh(self, *, force: bool = False) -> TokenSet:
        """Refresh when due (under the lock; a token another process just refreshed is used);
        ``force``: refresh anyway (`mailmentor check`, a refused token)."""
        me = uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_TTL_MS / 1000
        while not self.vault.take_refresh_lock(self.account, me, LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise OAuthUnavailable(
                    f"another process has been refreshing the token of {self.account} too long"
                )
            time.sleep(0.05)
        try:
            self._check_not_broken()
            tokens = self._stored()
            now = self.clock.now()
            if not force and tokens.valid_for(now) > REFRESH_BEFORE:
                return tokens  # refreshed by another process meanwhile
            form = {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": self.provider.client_id,
            }
            if self.provider.client_secret:
                form["client_secret"] = self.provider.client_secret
            try:
                answer = post_form(self.provider.token_url, form)
            except AuthorizationNeeded as exc:
                current = self._stored_or_none()
                if current is not None and current.refresh_token != tokens.refresh_token:
                    return current  # replaced meanwhile (a new `connect`): not a revocation
                self.vault.mark_broken(self.account, str(exc), self.clock.now())
                self._check_not_broken()
                raise
            fresh = tokens.refreshed(answer, self.clock.now())
            self._unsaved = fresh
            self.vault.save(fresh)
            self._unsaved = None
            log.info(
                "refreshed the OAuth2 access token of %s (valid until %s)",
                self.account,
                fresh.expires_at.strftime("%H:%M:%S UTC"),
            )
            return fresh
        finally:
            self.vault.release_refresh_lock(self.account, me)

    def _check_not_broken(self) -> None:
        """Raise AuthorizationNeeded while the provider's refusal stands (telling the user,
        once per outage, when this process can)."""
        broken = self.vault.broken(self.account)
        if broken is None:
            return
        reason, since = broken
        needed = AuthorizationNeeded(
            f"the OAuth2 authorisation of {self.account} was refused on "
            f"{since.strftime('%Y-%m-%d %H:%M UTC')} ({reason}); run `{self.connect_hint}` "
            "to sign in again",
            "invalid_grant",
        )
        if self.on_broken is not None and self.vault.take_notice(self.account):
            try:
                self.on_broken(needed)
            except Exception as failure:  # telling the user is a courtesy
                log.warning("could not tell the user about it: %s", failure)
        raise needed

    def _stored_or_none(self) -> TokenSet | None:
        if self._unsaved is not None:
            try:
                self.vault.save(self._unsaved)
                self._unsaved = None
            except Exception:
                return self._unsaved
        return self.vault.load(self.account)

    def _stored(self) -> TokenSet:
        try:
            tokens = self._stored_or_none()
        except StoreError as exc:  # another SECRET_KEY, or damaged: a new sign-in mends it
            raise AuthorizationNeeded(str(exc)) from None
        if tokens is None:
            raise AuthorizationNeeded(
                f"{self.account} is set to sign in with OAuth2 but is not connected: "
                f"run `{self.connect_hint}`"
            )
        return tokens
