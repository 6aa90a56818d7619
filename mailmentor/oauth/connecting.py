"""`mailmentor connect`, `connect --status` and `disconnect`: the first tokens, what is kept,
and forgetting them. The provider's answer is saved encrypted (`vault`); nothing is printed
that could be used to sign in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mailmentor.errors import ConfigError
from mailmentor.oauth.endpoints import OAuthError
from mailmentor.oauth.flows import device_flow, loopback_flow
from mailmentor.oauth.providers import Provider
from mailmentor.oauth.vault import TokenSet, TokenVault, expires
from mailmentor.settings import ENV_PREFIX


def connect(
    vault: TokenVault,
    provider: Provider,
    account: str,
    say: Callable[[str], None],
    *,
    flow: Callable[[Provider, Callable[[str], None]], dict[str, Any]] | None = None,
) -> TokenSet:
    """Sign ``account`` in with the provider's flow and keep the tokens; the new TokenSet."""
    if not account:
        raise ConfigError(f"{ENV_PREFIX}IMAP_USER: the mailbox to connect (its address)")
    run = flow or (device_flow if provider.flow == "device" else loopback_flow)
    answer = run(provider, say)
    if not answer.get("refresh_token"):
        raise OAuthError(
            f"{provider.name} gave no refresh token, so mailmentor could not sign in again "
            "later (Microsoft: the offline_access scope; Google: the consent screen)"
        )
    now = datetime.now(UTC)
    tokens = TokenSet(
        account=account,
        provider=provider.name,
        access_token=str(answer["access_token"]),
        expires_at=expires(answer, now),
        refresh_token=str(answer["refresh_token"]),
        scope=str(answer.get("scope") or provider.scope),
        connected_at=now,
        refreshed_at=now,
    )
    vault.save(tokens)
    return tokens


def status_lines(vault: TokenVault, account: str) -> list[str]:
    """What is kept for ``account``, for people: never a token."""
    tokens = vault.load(account)
    if tokens is None:
        return [f"{account or '(no IMAP_USER)'}: not connected (run `mailmentor connect`)"]
    now = datetime.now(UTC)
    left = tokens.valid_for(now)
    access = (
        f"valid for {left / 60:.0f} more minutes" if left > 0 else "expired (renewed at next use)"
    )
    return [
        f"{tokens.account}: connected to {tokens.provider}",
        f"  scopes: {tokens.scope}",
        f"  connected: {_when(tokens.connected_at)}",
        f"  last refreshed: {_when(tokens.refreshed_at)}",
        f"  access token: {access}",
    ]


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
