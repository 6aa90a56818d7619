"""What IMAP and SMTP logins need of OAuth2: a token now, and a new one when refused."""

from __future__ import annotations

from typing import Protocol


class BearerTokens(Protocol):
    """OAuth2 access tokens for one account (`AccessTokens` is the implementation)."""

    def token(self) -> str:
        """A valid access token (refreshed when due)."""
        ...

    def renewed(self) -> str:
        """A new access token, for when a server refused one that looked valid."""
        ...

    def needs_reauthorization(self) -> bool:
        """The provider refused the authorisation and nobody has run `connect` since."""
        ...
