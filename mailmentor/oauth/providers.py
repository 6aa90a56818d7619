"""Where each provider's endpoints are and what mailmentor asks for.

Microsoft (Entra ID, Outlook.com) offers the device-code flow, which works over SSH. Google
refuses it for mail scopes, so Google signs in through the browser with a loopback redirect
and PKCE. Any other provider is `generic`: its endpoints and scopes come from settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mailmentor.errors import ConfigError
from mailmentor.settings import ENV_PREFIX, Settings

Flow = Literal["device", "loopback"]


@dataclass(frozen=True)
class Provider:
    name: str
    authorization_url: str
    token_url: str
    device_url: str
    scopes: tuple[str, ...]
    flow: Flow
    client_id: str
    client_secret: str = field(default="", repr=False)

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


MICROSOFT_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
GOOGLE_SCOPES = ("https://mail.google.com/",)


def provider_from(settings: Settings, name: str | None = None) -> Provider:
    """The provider ``name`` (default OAUTH_PROVIDER) as settings configure it."""
    chosen = (name or settings.oauth_provider or "").strip().lower()
    client_id = settings.oauth_client_id
    secret = settings.oauth_client_secret.get_secret_value()
    if not chosen:
        raise ConfigError(f"{ENV_PREFIX}OAUTH_PROVIDER: not set (microsoft, google or generic)")
    if not client_id:
        raise ConfigError(
            f"{ENV_PREFIX}OAUTH_CLIENT_ID: required for OAuth2 sign-in (the application you "
            "registered with the provider; README, Signing in with OAuth2)"
        )
    if chosen == "microsoft":
        tenant = settings.oauth_tenant or "common"
        base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
        return Provider(
            "microsoft",
            f"{base}/authorize",
            f"{base}/token",
            f"{base}/devicecode",
            _scopes(settings) or MICROSOFT_SCOPES,
            "device",
            client_id,
            secret,
        )
    if chosen == "google":
        if not secret:
            raise ConfigError(
                f"{ENV_PREFIX}OAUTH_CLIENT_SECRET: Google needs the client secret of your "
                "desktop-app client as well"
            )
        return Provider(
            "google",
            "https://accounts.google.com/o/oauth2/v2/auth",
            "https://oauth2.googleapis.com/token",
            "",
            _scopes(settings) or GOOGLE_SCOPES,
            "loopback",
            client_id,
            secret,
        )
    if chosen == "generic":
        if not settings.oauth_token_url:
            raise ConfigError(f"{ENV_PREFIX}OAUTH_TOKEN_URL: required by the generic provider")
        if not (settings.oauth_device_url or settings.oauth_authorization_url):
            raise ConfigError(
                f"{ENV_PREFIX}OAUTH_DEVICE_URL or {ENV_PREFIX}OAUTH_AUTHORIZATION_URL: the "
                "generic provider needs one (device-code or browser sign-in)"
            )
        scopes = _scopes(settings)
        if not scopes:
            raise ConfigError(f"{ENV_PREFIX}OAUTH_SCOPES: required by the generic provider")
        return Provider(
            "generic",
            settings.oauth_authorization_url,
            settings.oauth_token_url,
            settings.oauth_device_url,
            scopes,
            "device" if settings.oauth_device_url else "loopback",
            client_id,
            secret,
        )
    raise ConfigError(
        f"{ENV_PREFIX}OAUTH_PROVIDER: {chosen!r} is not a provider (microsoft, google or generic)"
    )


def _scopes(settings: Settings) -> tuple[str, ...]:
    return tuple(settings.oauth_scopes.split())
