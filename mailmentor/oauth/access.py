"""A fresh access token before every login, refreshed shortly before it expires.

The watcher, the send workers and `mailmentor check` may run in different processes and all
refresh the same account. Providers rotate refresh tokens (the old one stops working once the
new one is issued), so two refreshes at once would leave one process with a dead token: a
refresh happens under a short Redis lock, and whoever gets the lock second finds the token
already fresh in the vault and uses it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from mailmentor.clock import Clock, SystemClock
from mailmentor.errors import StoreError
from mailmentor.oauth.endpoints import AuthorizationNeeded, OAuthUnavailable, post_form
from mailmentor.oauth.providers import Provider
from mailmentor.oauth.vault import TokenSet, TokenVault

log = logging.getLogger("mailmentor.oauth")

#: An access token with less than this left (seconds) is refreshed before it is used.
REFRESH_BEFORE = 300.0
#: How long one process may hold the refresh lock (seconds): longer than a token request.
LOCK_TTL_MS = 30_000


class AccessTokens:
    """``token()``: the account's access token, refreshed when due; raises AuthorizationNeeded
    when there is none or the provider revoked it, OAuthUnavailable when it cannot be reached."""

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
        #: Called once per outage (by the first process to see it): tell the user.
        self.on_broken = on_broken

    def needs_reauthorization(self) -> bool:
        """True from the provider's refusal until `mailmentor connect` is run again."""
        return self.vault.broken(self.account) is not None

    def renewed(self) -> str:
        return self.refresh(force=True).access_token

    def token(self) -> str:
        broken = self.vault.broken(self.account)
        if broken is not None:  # do not ask the provider again with a refused token
            raise AuthorizationNeeded(self._broken_text(broken[0], broken[1]), "invalid_grant")
        tokens = self._stored()
        if tokens.valid_for(self.clock.now()) > REFRESH_BEFORE:
            return tokens.access_token
        return self.refresh().access_token

    def refresh(self, *, force: bool = False) -> TokenSet:
        """Refresh when due (under the lock; a token another process just refreshed is used);
        ``force``: refresh anyway (`mailmentor check`)."""
        me = uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_TTL_MS / 1000
        while not self.vault.take_refresh_lock(self.account, me, LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise OAuthUnavailable(
                    f"another process has been refreshing the token of {self.account} too long"
                )
            time.sleep(0.05)
        try:
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
                since = self.clock.now()
                needed = AuthorizationNeeded(self._broken_text(str(exc), since), exc.error)
                if self.vault.mark_broken(self.account, str(exc), since) and self.on_broken:
                    try:
                        self.on_broken(needed)
                    except Exception as failure:  # telling the user is a courtesy
                        log.warning("could not tell the user about it: %s", failure)
                raise needed from None
            fresh = tokens.refreshed(answer, self.clock.now())
            self.vault.save(fresh)
            log.info(
                "refreshed the OAuth2 access token of %s (valid until %s)",
                self.account,
                fresh.expires_at.strftime("%H:%M:%S UTC"),
            )
            return fresh
        finally:
            self.vault.release_refresh_lock(self.account, me)

    def _broken_text(self, reason: str, since: datetime) -> str:
        return (
            f"the OAuth2 authorisation of {self.account} was refused on "
            f"{since.strftime('%Y-%m-%d %H:%M UTC')} ({reason}); run `{self.connect_hint}` "
            "to sign in again"
        )

    def _stored(self) -> TokenSet:
        try:
            tokens = self.vault.load(self.account)
        except StoreError as exc:  # another SECRET_KEY, or damaged: a new sign-in mends it
            raise AuthorizationNeeded(str(exc)) from None
        if tokens is None:
            raise AuthorizationNeeded(
                f"{self.account} is set to sign in with OAuth2 but is not connected: "
                f"run `{self.connect_hint}`"
            )
        return tokens
