"""A small, real OAuth 2.0 authorization server on loopback, standing in for Microsoft's and
Google's (which cannot be reached from here).

It implements what mailmentor uses, as the providers do: the token endpoint with the
refresh-token grant (refresh tokens rotate), the device-code grant (RFC 8628, with
``authorization_pending`` and ``slow_down``) and the authorization-code grant with PKCE S256
(RFC 7636) for a loopback redirect; the authorization endpoint, where the test plays the user;
and RFC 7662 introspection, which Dovecot's oauth2 passdb and the test SMTP server ask. Access
tokens really expire (``access_lifetime``). Errors are RFC 6749 JSON (``invalid_grant`` ...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Grant:
    """What one authorisation gave: whose, which scopes, its current refresh token."""

    user: str
    scope: str
    refresh_token: str
    revoked: bool = False


@dataclass
class Device:
    device_code: str
    user_code: str
    scope: str
    client_id: str
    expires_at: float
    approved_by: str | None = None
    last_poll: float = 0.0


@dataclass
class Pending:
    """An authorization code waiting to be exchanged."""

    user: str
    scope: str
    redirect_uri: str
    challenge: str
    client_id: str


@dataclass
class AuthServer:
    """The server's state; handlers run in the server's threads, so everything takes the lock."""

    client_id: str = "mailmentor-test-client"
    client_secret: str = ""
    access_lifetime: float = 3600.0
    device_interval: int = 1
    host: str = "127.0.0.1"
    port: int = 0
    approve_as: str = ""  # the user the authorization endpoint signs in as (the test's user)
    #: Called with each token request's form before it is answered (what happens elsewhere
    #: while a request is in flight, as the test plays it).
    during_token: Callable[[dict[str, str]], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _access: dict[str, tuple[str, str, float]] = field(
        default_factory=dict
    )  # token: user, scope, exp
    _grants: dict[str, Grant] = field(default_factory=dict)  # refresh token -> grant
    _devices: dict[str, Device] = field(default_factory=dict)
    _codes: dict[str, Pending] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> AuthServer:
        handler = type("Handler", (_Handler,), {"auth": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def device_url(self) -> str:
        return f"{self.base}/devicecode"

    @property
    def authorization_url(self) -> str:
        return f"{self.base}/authorize"

    @property
    def introspection_url(self) -> str:
        return f"{self.base}/introspect"

    # -- what the test does as the user or the provider's admin -----------------------------

    def grant(self, user: str, scope: str = "mail") -> str:
        """Authorise ``user`` directly (as if they had signed in); their refresh token."""
        with self._lock:
            return self._new_grant(user, scope)

    def approve(self, user_code: str, user: str) -> None:
        """The user enters the code on the verification page and signs in."""
        with self._lock:
            for device in self._devices.values():
                if device.user_code == user_code:
                    device.approved_by = user
                    return
        raise KeyError(f"no device code {user_code!r}")

    def revoke(self, user: str) -> None:
        """Consent withdrawn / password changed: every grant and token of ``user`` is gone."""
        with self._lock:
            for grant in self._grants.values():
                if grant.user == user:
                    grant.revoked = True
            self._access = {t: v for t, v in self._access.items() if v[0] != user}

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self._lock:
            self._access = {t: (u, s, 0.0) for t, (u, s, _) in self._access.items()}

    def active(self, token: str) -> str | None:
        """The user of a valid, unexpired access token."""
        with self._lock:
            found = self._access.get(token)
        if found is None or found[2] <= time.time():
            return None
        return found[0]

    def token_grants(self, grant_type: str) -> int:
        """How many token requests of this grant type were made."""
        return sum(
            1
            for path, form in self.requests
            if path == "/token" and form.get("grant_type") == grant_type
        )

    # -- the endpoints ----------------------------------------------------------------------

    def _new_grant(self, user: str, scope: str) -> str:
        refresh = "rt-" + secrets.token_urlsafe(16)
        self._grants[refresh] = Grant(user, scope, refresh)
        return refresh

    def _tokens(self, grant: Grant, rotate: bool) -> dict[str, object]:
        access = "at-" + secrets.token_urlsafe(16)
        self._access[access] = (grant.user, grant.scope, time.time() + self.access_lifetime)
        if rotate:
            del self._grants[grant.refresh_token]
            grant.refresh_token = "rt-" + secrets.token_urlsafe(16)
            self._grants[grant.refresh_token] = grant
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.access_lifetime),
            "refresh_token": grant.refresh_token,
            "scope": grant.scope,
        }

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if self.during_token is not None:
            self.during_token(form)
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        if self.client_secret and form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        kind = form.get("grant_type")
        with self._lock:
            if kind == "refresh_token":
                grant = self._grants.get(form.get("refresh_token", ""))
                if grant is None or grant.revoked:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "revoked or expired",
                    }
                return 200, self._tokens(grant, rotate=True)
            if kind == "urn:ietf:params:oauth:grant-type:device_code":
                return self._device_token(form.get("device_code", ""))
            if kind == "authorization_code":
                return self._code_token(form)
        return 400, {"error": "unsupported_grant_type"}

    def _device_token(self, code: str) -> tuple[int, dict[str, object]]:
        device = self._devices.get(code)
        now = time.time()
        if device is None or device.expires_at < now:
            return 400, {"error": "expired_token"}
        if device.approved_by is None:
            too_soon = now - device.last_poll < self.device_interval * 0.5
            device.last_poll = now
            return 400, {"error": "slow_down" if too_soon else "authorization_pending"}
        del self._devices[code]
        refresh = self._new_grant(device.approved_by, device.scope)
        return 200, self._tokens(self._grants[refresh], rotate=False)

    def _code_token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        pending = self._codes.pop(form.get("code", ""), None)
        if pending is None or pending.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != pending.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        refresh = self._new_grant(pending.user, pending.scope)
        return 200, self._tokens(self._grants[refresh], rotate=False)

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client"}
        with self._lock:
            device = Device(
                device_code="dc-" + secrets.token_urlsafe(16),
                user_code=f"{secrets.randbelow(10**8):08d}",
                scope=form.get("scope", ""),
                client_id=form["client_id"],
                expires_at=time.time() + 900,
            )
            self._devices[device.device_code] = device
        return 200, {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": f"{self.base}/device",
            "expires_in": 900,
            "interval": self.device_interval,
            "message": f"To sign in, open {self.base}/device and enter {device.user_code}.",
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """The user signs in (as ``approve_as``) and is sent back to the loopback redirect."""
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, ""
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, ""
        code = "ac-" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = Pending(
                self.approve_as,
                query.get("scope", ""),
                query.get("redirect_uri", ""),
                query["code_challenge"],
                query["client_id"],
            )
        target = query.get("redirect_uri", "")
        params = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        return 302, f"{target}?{params}"

    def introspect(self, form: dict[str, str]) -> dict[str, object]:
        user = self.active(form.get("token", ""))
        if user is None:
            return {"active": False}
        return {"active": True, "username": user, "token_type": "Bearer"}


class _Handler(BaseHTTPRequestHandler):
    auth: AuthServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return dict(urllib.parse.parse_qsl(body))

    def _json(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        form = self._form()
        path = urllib.parse.urlsplit(self.path).path
        self.auth.requests.append((path, form))
        if path == "/token":
            self._json(*self.auth.token(form))
        elif path == "/devicecode":
            self._json(*self.auth.device_code(form))
        elif path == "/introspect":
            self._json(200, self.auth.introspect(form))
        else:
            self._json(404, {"error": "not_found"})

    def do_GET(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        self.auth.requests.append((split.path, query))
        if split.path == "/authorize":
            status, location = self.auth.authorize(query)
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif split.path == "/introspect":  # Dovecot's introspection_mode = get
            token = query.get("token", "")
            self._json(200, self.auth.introspect({"token": token}))
        else:
            self._json(404, {"error": "not_found"})


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    """An authorization server of the test's own."""
    server = AuthServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def authority() -> Iterator[AuthServer]:
    """The authorization server the session's OAuth2 Dovecot asks (each test its own user)."""
    server = AuthServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def oauth_dovecot(authority: AuthServer) -> Iterator[object]:
    """Dovecot taking XOAUTH2/OAUTHBEARER logins that ``authority`` vouches for."""
    from tests.servers.dovecot import DovecotServer, dovecot_binary

    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer(oauth2_introspection_url=authority.introspection_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()
