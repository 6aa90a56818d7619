"""The providers' presets (the providers themselves cannot be reached from here): endpoints,
scopes and flows as documented, and a setting missing named in one line."""

from __future__ import annotations

import pytest

from mailmentor.errors import ConfigError
from mailmentor.oauth import provider_from
from mailmentor.oauth.providers import GOOGLE_SCOPES, MICROSOFT_SCOPES
from mailmentor.settings import Settings
from tests.service_factory import test_settings as settings_from


def settings(**values: object) -> Settings:
    return settings_from("ada@example.com", "mentor@example.com", **values)


def test_microsoft_signs_in_with_a_device_code_in_the_given_tenant() -> None:
    provider = provider_from(
        settings(oauth_client_id="abc", oauth_tenant="contoso.com"), "microsoft"
    )
    base = "https://login.microsoftonline.com/contoso.com/oauth2/v2.0"
    assert (provider.token_url, provider.device_url) == (f"{base}/token", f"{base}/devicecode")
    assert provider.flow == "device" and provider.scopes == MICROSOFT_SCOPES
    assert "offline_access" in provider.scope and not provider.client_secret


def test_google_signs_in_in_the_browser_and_needs_its_secret() -> None:
    with pytest.raises(ConfigError, match="MAILMENTOR_OAUTH_CLIENT_SECRET"):
        provider_from(settings(oauth_client_id="abc"), "google")
    provider = provider_from(settings(oauth_client_id="abc", oauth_client_secret="s"), "google")
    assert provider.flow == "loopback" and provider.scopes == GOOGLE_SCOPES
    assert provider.token_url == "https://oauth2.googleapis.com/token" and not provider.device_url


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "MAILMENTOR_OAUTH_PROVIDER"),
        ({"oauth_provider": "microsoft"}, "MAILMENTOR_OAUTH_CLIENT_ID"),
        ({"oauth_provider": "yahoo", "oauth_client_id": "x"}, "MAILMENTOR_OAUTH_PROVIDER"),
        ({"oauth_provider": "generic", "oauth_client_id": "x"}, "MAILMENTOR_OAUTH_TOKEN_URL"),
        (
            {"oauth_provider": "generic", "oauth_client_id": "x", "oauth_token_url": "http://t"},
            "MAILMENTOR_OAUTH_DEVICE_URL",
        ),
        (
            {
                "oauth_provider": "generic",
                "oauth_client_id": "x",
                "oauth_token_url": "http://t",
                "oauth_device_url": "http://d",
            },
            "MAILMENTOR_OAUTH_SCOPES",
        ),
    ],
)
def test_a_missing_setting_is_named(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        provider_from(settings(**values))


def test_oauth2_without_a_provider_stops_start_up_naming_it() -> None:
    from mailmentor.settings import require_mail_accounts

    configured = settings(
        imap_host="imap.example.com",
        imap_user="ada@example.com",
        imap_auth="oauth2",
        smtp_host="smtp.example.com",
    )
    with pytest.raises(ConfigError, match=r"OAUTH_PROVIDER: missing .*IMAP_AUTH is oauth2"):
        require_mail_accounts(configured)
