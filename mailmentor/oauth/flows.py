"""The first sign-in, interactively (`mailmentor connect`): the device-code flow (RFC 8628),
which works over SSH, and the browser flow with a loopback redirect and PKCE (RFC 8252, RFC
7636), which Google requires for mail scopes.

Both return the provider's token answer; `connect` turns it into a TokenSet. What the user must
do is written through ``say`` (the terminal); waiting uses ``sleep``, so tests drive both.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from mailmentor.oauth.endpoints import OAuthError, post_form
from mailmentor.oauth.providers import Provider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def device_flow(
    provider: Provider,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Ask for a device code, tell the user where to enter it, and poll until they did."""
    if not provider.device_url:
        raise OAuthError(f"{provider.name} has no device-code endpoint; use the browser flow")
    started = post_form(
        provider.device_url, {"client_id": provider.client_id, "scope": provider.scope}
    )
    if not started.get("device_code") or not started.get("user_code"):
        raise OAuthError(f"{provider.device_url} answered without a device code")
    uri = started.get("verification_uri") or started.get("verification_url") or ""
    say(
        f"To connect mailmentor, open {uri} in any browser (this machine's or another's) and "
        f"enter the code {started.get('user_code', '?')}, then sign in as the mailbox's owner."
    )
    interval = float(started.get("interval", 5))
    deadline = time.monotonic() + float(started.get("expires_in", 900))
    form = {
        "grant_type": DEVICE_GRANT,
        "device_code": str(started["device_code"]),
        "client_id": provider.client_id,
    }
    if provider.client_secret:
        form["client_secret"] = provider.client_secret
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            return post_form(provider.token_url, form)
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5  # RFC 8628 3.5
                continue
            raise
    raise OAuthError("the code expired before it was entered; run `mailmentor connect` again")


class _Redirect(http.server.BaseHTTPRequestHandler):
    """Receives the provider's redirect to http://127.0.0.1:PORT/ once."""

    result: dict[str, str]
    done: threading.Event
    timeout = 10  # a browser's idle speculative connection must not hold the redirect up

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if ("code" not in query and "error" not in query) or self.done.is_set():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.result.update(query)  # the first answer only: a later one cannot override it
        body = (
            b"<html><body><p>mailmentor is connected. You can close this window.</p></body></html>"
            if "code" in query
            else b"<html><body><p>Sign-in failed; see the terminal.</p></body></html>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.done.set()


def loopback_flow(
    provider: Provider,
    say: Callable[[str], None],
    *,
    port: int = 0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Print the sign-in URL, wait for the browser to come back to 127.0.0.1, exchange the code."""
    if not provider.authorization_url:
        raise OAuthError(f"{provider.name} has no authorization endpoint; use the device flow")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    result: dict[str, str] = {}
    done = threading.Event()
    handler = type("Redirect", (_Redirect,), {"result": result, "done": done})
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise OAuthError(f"cannot listen on 127.0.0.1:{port} ({exc}); try another --port") from None
    server.daemon_threads = True
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    params = {
        "client_id": provider.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": provider.scope,
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "access_type": "offline",  # Google: give a refresh token
        "prompt": "consent",
    }
    url = f"{provider.authorization_url}?{urllib.parse.urlencode(params)}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        say(
            f"To connect mailmentor, open this address in a browser on this machine and sign "
            f"in as the mailbox's owner:\n\n  {url}\n\n"
            f"On a server without a browser, forward the port first "
            f"(ssh -L {server.server_address[1]}:127.0.0.1:{server.server_address[1]} THIS-HOST) "
            "and open the address on your own machine."
        )
        if not done.wait(timeout):
            raise OAuthError("no sign-in came back within the time allowed; run it again")
    finally:
        server.shutdown()
        server.server_close()
    if result.get("state") != state:
        raise OAuthError("the sign-in came back with the wrong state; run it again")
    if "error" in result:
        raise OAuthError(f"the provider refused the sign-in: {result['error']}", result["error"])
    form = {
        "grant_type": "authorization_code",
        "code": result["code"],
        "redirect_uri": redirect_uri,
        "client_id": provider.client_id,
        "code_verifier": verifier,
    }
    if provider.client_secret:
        form["client_secret"] = provider.client_secret
    return post_form(provider.token_url, form)
