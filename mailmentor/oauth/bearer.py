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

    def usable(self) -> bool:
        """Whether a login is worth trying (connected, not refused since); no network."""
        ...
