"""`mailmentor connect`'s two flows end to end against the suite's authorization server, the
test playing the user: entering the device code, and following the browser's redirect back to
the loopback address (PKCE checked by the server)."""

from __future__ import annotations

import queue
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from mailmentor.oauth import OAuthError, TokenSet
from mailmentor.oauth.connecting import connect, status_lines
from mailmentor.store import Store
from tests.oauth.support import USER, provider_of, vault_on
from tests.servers.oauth_server import AuthServer


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, queue.Queue[Any]]:
    out: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            out.put(call())
        except BaseException as exc:
            out.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_the_device_flow_waits_for_the_user_to_enter_the_code(
    store: Store, auth_server: AuthServer
) -> None:
    said: queue.Queue[str] = queue.Queue()
    provider = provider_of(auth_server, "device")
    thread, out = in_thread(lambda: connect(vault_on(store), provider, USER, said.put))
    prompt = said.get(timeout=10)
    code = re.search(r"enter the code (\d+)", prompt)
    assert code and f"{auth_server.base}/device" in prompt
    # The flow polls (authorization_pending) until the user has signed in elsewhere.
    auth_server.approve(code.group(1), USER)
    thread.join(20)
    tokens = out.get_nowait()
    assert isinstance(tokens, TokenSet), tokens
    assert auth_server.active(tokens.access_token) == USER
    assert vault_on(store).load(USER) == tokens
    assert auth_server.token_grants("urn:ietf:params:oauth:grant-type:device_code") >= 1
    lines = status_lines(vault_on(store), USER)
    assert lines[0] == f"{USER}: connected to generic" and "offline_access" in lines[1]
    assert not any(tokens.refresh_token in line or tokens.access_token in line for line in lines)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the test looks at the redirect itself


def test_the_browser_flow_comes_back_to_the_loopback_address(
    store: Store, auth_server: AuthServer
) -> None:
    auth_server.approve_as = USER
    said: queue.Queue[str] = queue.Queue()
    provider = provider_of(auth_server, "loopback")
    thread, out = in_thread(lambda: connect(vault_on(store), provider, USER, said.put))
    prompt = said.get(timeout=10)
    url = re.search(r"(http://\S+/authorize\?\S+)", prompt)
    assert url and "code_challenge_method=S256" in url.group(1) and "ssh -L" in prompt
    # The browser: the provider's sign-in page answers with a redirect to 127.0.0.1.
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(url.group(1))
    location = redirect.value.headers["Location"]
    redirect.value.close()
    assert location.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(location) as page:
        assert b"connected" in page.read()
    thread.join(20)
    tokens = out.get_nowait()
    assert isinstance(tokens, TokenSet), tokens
    assert auth_server.active(tokens.access_token) == USER


def test_a_redirect_with_the_wrong_state_is_refused(store: Store, auth_server: AuthServer) -> None:
    said: queue.Queue[str] = queue.Queue()
    provider = provider_of(auth_server, "loopback")
    thread, out = in_thread(lambda: connect(vault_on(store), provider, USER, said.put))
    prompt = said.get(timeout=10)
    port = re.search(r"redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A(\d+)", prompt)
    assert port
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/?code=x&state=forged"):
        pass
    thread.join(20)
    failure = out.get_nowait()
    assert isinstance(failure, OAuthError) and "wrong state" in str(failure)
    assert vault_on(store).load(USER) is None
