"""Signing in the way mail clients do: OAuth 2.0 for IMAP and SMTP (XOAUTH2).

`providers` names the endpoints and scopes (Microsoft, Google, or any from settings),
`endpoints` talks to them (form posts, RFC 6749 errors as types), `flows` obtains the first
tokens interactively (`mailmentor connect`), `vault` keeps them encrypted in the store, and
`access` hands out a fresh access token before every login, refreshing it when due.
"""

from mailmentor.oauth.access import AccessTokens
from mailmentor.oauth.endpoints import AuthorizationNeeded, OAuthError, OAuthUnavailable
from mailmentor.oauth.providers import Provider, provider_from
from mailmentor.oauth.vault import TokenSet, TokenVault

__all__ = [
    "AccessTokens",
    "AuthorizationNeeded",
    "OAuthError",
    "OAuthUnavailable",
    "Provider",
    "TokenSet",
    "TokenVault",
    "provider_from",
]
