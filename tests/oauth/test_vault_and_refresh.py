"""Tokens kept encrypted in the real Redis, and refreshed against the suite's authorization
server: when due and only then, once across processes, rotated atomically, and a revoked
authorisation said plainly."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailmentor.errors import StoreError
from mailmentor.oauth import AccessTokens, AuthorizationNeeded, TokenSet
from mailmentor.oauth.access import REFRESH_BEFORE
from mailmentor.store import Store
from tests.oauth.support import USER, provider_of, vault_on
from tests.servers.oauth_server import AuthServer


def connected(auth: AuthServer, store: Store, expires_in: float = 3600.0) -> TokenSet:
    """A token set as `connect` keeps it, for a refresh token the server really issued."""
    now = datetime.now(UTC)
    tokens = TokenSet(
        account=USER,
        provider="generic",
        access_token="at-not-yet-issued",
        expires_at=now + timedelta(seconds=expires_in),
        refresh_token=auth.grant(USER),
        scope="mail offline_access",
        connected_at=now,
        refreshed_at=now,
    )
    vault_on(store).save(tokens)
    return tokens


def test_tokens_are_encrypted_at_rest_and_never_shown(
    store: Store, auth_server: AuthServer
) -> None:
    tokens = connected(auth_server, store)
    raw = store.client.get(vault_on(store).key(USER))
    assert raw is not None and tokens.refresh_token.encode() not in raw
    assert b"ada@" not in raw, "not even the account is readable"
    assert vault_on(store).load(USER) == tokens
    assert tokens.refresh_token not in repr(tokens) and tokens.access_token not in repr(tokens)
    with pytest.raises(StoreError, match="another SECRET_KEY"):
        vault_on(store, b"some other key").load(USER)
    assert vault_on(store).delete(USER) and vault_on(store).load(USER) is None


def test_a_valid_token_is_used_and_one_about_to_expire_is_refreshed_and_rotated(
    store: Store, auth_server: AuthServer
) -> None:
    tokens = AccessTokens(vault_on(store), provider_of(auth_server), USER)
    first = connected(auth_server, store)
    assert tokens.token() == "at-not-yet-issued"
    assert auth_server.token_grants("refresh_token") == 0, "an hour left: no refresh"

    vault_on(store).save(replace(first, expires_at=datetime.now(UTC) + timedelta(seconds=60)))
    fresh = tokens.token()
    assert auth_server.active(fresh) == USER
    kept = vault_on(store).load(USER)
    assert kept is not None and kept.access_token == fresh
    assert kept.refresh_token != first.refresh_token, "the rotated refresh token replaced it"
    assert kept.valid_for(datetime.now(UTC)) > REFRESH_BEFORE
    assert tokens.token() == fresh and auth_server.token_grants("refresh_token") == 1


def test_processes_refreshing_at_once_refresh_once(store: Store, auth_server: AuthServer) -> None:
    connected(auth_server, store, expires_in=10)
    got: list[str] = []
    errors: list[BaseException] = []

    def use() -> None:
        try:
            got.append(AccessTokens(vault_on(store), provider_of(auth_server), USER).token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(set(got)) == 1, (errors, got)
    assert auth_server.token_grants("refresh_token") == 1, "a rotated token would have died"


def test_a_revoked_authorisation_says_what_to_run(store: Store, auth_server: AuthServer) -> None:
    connected(auth_server, store, expires_in=0)
    auth_server.revoke(USER)
    tokens = AccessTokens(
        vault_on(store), provider_of(auth_server), USER, connect_hint="mailmentor connect generic"
    )
    with pytest.raises(AuthorizationNeeded, match="run `mailmentor connect generic`") as caught:
        tokens.token()
    assert "invalid_grant" in str(caught.value)
    vault_on(store).delete(USER)
    with pytest.raises(AuthorizationNeeded, match="not connected"):
        tokens.token()


def test_a_refusal_of_a_token_replaced_meanwhile_is_not_a_revocation(
    store: Store, auth_server: AuthServer
) -> None:
    """A `connect` elsewhere while a refresh is on its way: the old refresh token is refused,
    the new set is used, and nothing is marked broken."""
    old = connected(auth_server, store, expires_in=0)
    auth_server.revoke(USER)  # the old grant is gone at the provider
    reconnected = replace(old, refresh_token=auth_server.grant(USER), access_token="at-new")

    def meanwhile(form: dict[str, str]) -> None:
        if form.get("refresh_token") == old.refresh_token:
            vault_on(store).save(
                replace(reconnected, expires_at=datetime.now(UTC) + timedelta(hours=1))
            )

    auth_server.during_token = meanwhile
    tokens = AccessTokens(vault_on(store), provider_of(auth_server), USER)
    assert tokens.token() == "at-new"
    assert vault_on(store).broken(USER) is None and tokens.usable()


def test_the_user_is_told_once_per_outage_whoever_noticed_it(
    store: Store, auth_server: AuthServer
) -> None:
    told: list[str] = []
    connected(auth_server, store, expires_in=0)
    auth_server.revoke(USER)
    checker = AccessTokens(vault_on(store), provider_of(auth_server), USER)  # `mailmentor check`
    watcher = AccessTokens(
        vault_on(store), provider_of(auth_server), USER, on_broken=lambda e: told.append(str(e))
    )
    with pytest.raises(AuthorizationNeeded):
        checker.token()  # noticed first, by a process that cannot mail
    assert not checker.usable() and told == []
    for _ in range(3):
        with pytest.raises(AuthorizationNeeded):
            watcher.token()
    assert len(told) == 1 and "run `mailmentor connect`" in told[0]
    assert auth_server.token_grants("refresh_token") == 1, "the provider is asked once"

    connected(auth_server, store, expires_in=0)  # connect again: usable, and a new outage ...
    assert watcher.usable()
    auth_server.revoke(USER)
    with pytest.raises(AuthorizationNeeded):
        watcher.token()
    assert len(told) == 2  # ... is told again
