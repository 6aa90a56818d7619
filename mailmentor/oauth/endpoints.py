"""Form posts to a provider's endpoints, and its answers as types (RFC 6749 section 5.2).

``invalid_grant`` is the one answer a person must act on (the authorisation was revoked,
expired after months unused, or the password changed): `AuthorizationNeeded`. A provider that
cannot be reached, or answers 5xx, is `OAuthUnavailable` (try again later). Anything else is an
`OAuthError` whose text names the endpoint and what it said; no token is ever in a message.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mailmentor.errors import LoginError, MailmentorError

#: Seconds one request to a provider may take.
TIMEOUT = 20.0


class OAuthError(MailmentorError):
    """The provider refused a request (the message says which endpoint and what it said)."""

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.error = error


class OAuthUnavailable(OAuthError, ConnectionError):
    """The provider could not be reached or failed (5xx): worth trying again later."""


class AuthorizationNeeded(OAuthError, LoginError):
    """The authorisation is gone (``invalid_grant``): run `mailmentor connect` again."""


def post_form(url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST ``form`` (urlencoded) to ``url``; the JSON answer of a 2xx, else raises."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Accept": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return _json(url, response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read()
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            exc.close()
        if exc.code >= 500:
            raise OAuthUnavailable(f"{url} answered HTTP {exc.code}") from None
        answer = _json(url, body, strict=False)
        error = str(answer.get("error", "")) or f"HTTP {exc.code}"
        said = str(answer.get("error_description", "")).split("\r\n")[0][:300]
        message = f"{url}: {error}" + (f" ({said})" if said else "")
        if error == "invalid_grant":
            raise AuthorizationNeeded(message, error) from None
        raise OAuthError(message, error) from None
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuthUnavailable(f"cannot reach {url}: {reason}") from None


def _json(url: str, body: bytes, *, strict: bool = True) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        if strict:
            raise OAuthError(f"{url} answered something that is not JSON") from None
        return {}
    if not isinstance(value, dict):
        if strict:
            raise OAuthError(f"{url} answered JSON that is not an object")
        return {}
    return value
