"""Every handler of the server extension refuses unauthenticated and unauthorized calls.

The handler list is enumerated from the extension itself, so a new endpoint that
forgets ``@web.authenticated`` / ``@authorized`` fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer

from jupyter_containerize.server.app import ContainerizeApp
from jupyter_containerize.server.handlers import HANDLERS

pytest_plugins = ("pytest_jupyter.jupyter_server",)

METHODS = ("get", "post", "put", "patch", "delete")


class DenyAll(Authorizer):
    """An authorizer that refuses every action on every resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False


@pytest.fixture(autouse=True)
def _store(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JC_STORE", str(tmp_path / "jobs.sqlite"))


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}}}


def _calls() -> Iterator[tuple[str, str]]:
    """(method, url) for every method every handler implements, with ids filled in."""
    for pattern, handler in HANDLERS:
        url = re.sub(r"\(\?P<\w+>[^)]*\)", "abc123", pattern)
        for method in METHODS:
            if method in handler.__dict__:
                yield method.upper(), url


CALLS = list(_calls())


def test_handlers_are_enumerated_from_the_extension() -> None:
    app = ContainerizeApp()
    app.initialize_handlers()
    assert [h[0] for h in app.handlers] == [h[0] for h in HANDLERS]
    # jobs GET/POST, job GET/DELETE, cancel, rerun, events, sweep, preview, engine, parameters,
    # schedules GET/POST, schedule GET/DELETE, pause, resume
    assert len(CALLS) == 17


def _routes(router: Any) -> Iterator[tuple[str, type]]:
    for rule in getattr(router, "rules", ()):
        target = rule.target
        if isinstance(target, type):
            yield getattr(rule.matcher, "regex", re.compile("")).pattern, target
        else:
            yield from _routes(target)


async def test_every_live_containerize_route_is_covered(jp_serverapp: Any) -> None:
    """The server's own routing table holds no /containerize/ handler that this test does not call."""
    live = {cls for pattern, cls in _routes(jp_serverapp.web_app.default_router) if "/containerize/" in pattern}
    assert live, "the extension registered no handlers"
    assert live <= {h for _, h in HANDLERS}


async def _status(client: Any, base_url: str, method: str, url: str, headers: dict[str, str]) -> int:
    body = "{}" if method in ("POST", "PUT", "PATCH") else None
    response = await client.fetch(f"{base_url.rstrip('/')}{url}", method=method, body=body, headers=headers,
                                  follow_redirects=False, raise_error=False, request_timeout=60)
    return int(response.code)


async def _open_calls(client: Any, base_url: str, headers: dict[str, str]) -> list[str]:
    """The calls that were NOT refused with 401/403."""
    open_ = []
    for method, url in CALLS:
        code = await _status(client, base_url, method, url, headers)
        if code not in (401, 403):
            open_.append(f"{method} {url} -> {code}")
    return open_


async def test_unauthenticated_calls_are_rejected(jp_serverapp: Any, http_server_client: Any, jp_base_url: str) -> None:
    assert await _status(http_server_client, jp_base_url, "GET", "/api/status", {}) == 403  # the server answers at all
    assert await _open_calls(http_server_client, jp_base_url, {}) == []


async def test_wrong_token_is_rejected(jp_serverapp: Any, http_server_client: Any, jp_base_url: str) -> None:
    assert await _open_calls(http_server_client, jp_base_url, {"Authorization": "token not-the-token"}) == []


async def test_forged_cookie_without_xsrf_is_rejected(jp_serverapp: Any, http_server_client: Any, jp_base_url: str) -> None:
    """A cookie-only caller (a browser page without the token or an XSRF token) gets nothing."""
    headers = {"Cookie": "username-127-0-0-1=forged; _xsrf=x"}
    assert await _open_calls(http_server_client, jp_base_url, headers) == []


async def test_token_post_from_a_browser_origin_needs_xsrf(jp_serverapp: Any, http_server_client: Any, jp_base_url: str) -> None:
    """jupyter_server's XSRF check applies to our POSTs: a logged-in cookie without _xsrf is refused."""
    token = jp_serverapp.identity_provider.token
    login = await http_server_client.fetch(f"{jp_base_url.rstrip('/')}/?token={token}",
                                           follow_redirects=False, raise_error=False)
    cookies = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie")
                        if not c.startswith("_xsrf"))
    assert cookies, "logging in with the token set no cookie"
    assert await _status(http_server_client, jp_base_url, "GET", "/containerize/notebook-parameters?path=x.ipynb",
                         {"Cookie": cookies}) == 400  # the cookie logs in: GETs get through (bad path: 400)
    code = await _status(http_server_client, jp_base_url, "POST", "/containerize/preview", {"Cookie": cookies})
    assert code == 403


class TestAuthorized:
    """With a valid token but an authorizer that denies everything, every handler answers 403."""

    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {"ServerApp": {"jpserver_extensions": {"jupyter_containerize": True}, "authorizer_class": DenyAll}}

    async def test_unauthorized_calls_are_rejected(self, jp_fetch: Any) -> None:
        allowed = []
        for method, url in CALLS:
            kwargs: dict[str, Any] = {"method": method, "raise_error": False}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["body"] = "{}"
            response = await jp_fetch(*url.strip("/").split("/"), **kwargs)
            if response.code != 403:
                allowed.append(f"{method} {url} -> {response.code}")
        assert allowed == []


async def test_authorized_engine_call_succeeds(jp_fetch: Any) -> None:
    """The control case: with the token, the same handlers answer."""
    response = await jp_fetch("containerize", "engine")
    assert response.code == 200
