"""A provider pointing at the suite's authorization server, and a vault on the suite's Redis."""

from __future__ import annotations

from mailmentor.oauth import Provider, TokenVault
from mailmentor.store import Store
from tests.servers.oauth_server import AuthServer

SECRET = b"oauth-test-secret"
USER = "ada@mailmentor.test"


def provider_of(auth: AuthServer, flow: str = "device") -> Provider:
    return Provider(
        "generic",
        auth.authorization_url,
        auth.token_url,
        auth.device_url if flow == "device" else "",
        ("mail", "offline_access"),
        "device" if flow == "device" else "loopback",
        auth.client_id,
    )


def vault_on(store: Store, secret: bytes = SECRET) -> TokenVault:
    return TokenVault(store.client, store.ns, secret)
