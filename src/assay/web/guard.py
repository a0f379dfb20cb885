"""Request guard for the dashboard: read-only methods, Host check, optional token, safety headers.

A pure ASGI middleware (no Starlette import), so it also wraps any app in tests.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "assay_token"
# The page loads only its own script and style; an injected <script> or inline handler would not run
# even if some text escaped its text node.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Guard:
    """Refuses writes (405), unknown Host headers (400) and requests without the token (401)."""

    def __init__(self, app: Any, token: str | None = None, allowed_hosts: list[str] | None = None) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["method"] not in ("GET", "HEAD"):
            await _reply(send, 405, "The dashboard is read-only: only GET requests are served.", [(b"allow", b"GET, HEAD")])
            return
        if self.allowed_hosts is not None and _hostname(headers.get("host", "")) not in self.allowed_hosts:
            await _reply(send, 400, f"Host '{headers.get('host', '')}' is not served here; open http://127.0.0.1 instead.")
            return
        extra: list[tuple[bytes, bytes]] = []
        if self.token:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if _same(query.get("token"), self.token):
                # Trade the token in the URL for a cookie, and drop it from the address bar.
                rest = urlencode({k: v for k, v in query.items() if k != "token"})
                location = scope.get("path", "/") + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                await _reply(send, 303, "", [(b"location", location.encode()), (b"set-cookie", cookie.encode())])
                return
            cookies = SimpleCookie(headers.get("cookie", ""))
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or (
                cookies[COOKIE].value if COOKIE in cookies else None)
            if not _same(given, self.token):
                await _reply(send, 401, "This dashboard needs its token: open the URL `assay ui` printed (it ends in ?token=...).")
                return
        if scope.get("path", "/") == "/":
            extra.append((b"content-security-policy", CSP.encode()))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *[h for h in HEADERS + extra if h[0] not in names]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _hostname(host: str) -> str:
    host = host.lower()
    if host.startswith("["):  # [::1]:8765
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _reply(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode() if message else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
