"""Request guard for the dashboard: read-only methods, Host check, optional token, safety headers.

A pure ASGI middleware (no Starlette import), so it also wraps any app in tests.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

COOKIE = "assay_token"
# A Host header is a name or an IP literal, then an optional port; anything else (userinfo such as
# `127.0.0.1:80@evil.com`, a path, spaces) is refused rather than guessed at.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?")
# The page loads only its own script and style; an injected <script> or inline handler would not run
# even if some text escaped its text node.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Guard:
    """Refuses writes (405), unknown Host headers (400) and requests without the token (401).

    `allowed_hosts` holds names (`localhost`) and IP networks (`127.0.0.0/8`, `::1`); None accepts
    any Host. The token cookie is named after the port served (`assay_token_8765`), because
    browsers share cookies between all ports of a host.
    """

    def __init__(self, app: Any, token: str | None = None, allowed_hosts: list[str] | None = None) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = _allowed(allowed_hosts) if allowed_hosts else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["method"] not in ("GET", "HEAD"):
            await _reply(send, 405, "The dashboard is read-only: only GET requests are served.", [(b"allow", b"GET, HEAD")])
            return
        if self.allowed_hosts is not None and not _host_allowed(headers.get("host", ""), self.allowed_hosts):
            await _reply(send, 400, f"Host '{headers.get('host', '')}' is not served here; open http://127.0.0.1 instead.")
            return
        extra: list[tuple[bytes, bytes]] = []
        if self.token:
            name = cookie_name(scope)
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if _same(query.get("token"), self.token):
                # Trade the token in the URL for a cookie, and drop it from the address bar.
                rest = urlencode({k: v for k, v in query.items() if k != "token"})
                location = _local_path(scope.get("path", "/")) + (f"?{rest}" if rest else "")
                cookie = f"{name}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                await _reply(send, 303, "", [(b"location", location.encode()), (b"set-cookie", cookie.encode())])
                return
            cookies = SimpleCookie(headers.get("cookie", ""))
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or (
                cookies[name].value if name in cookies else None)
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


def cookie_name(scope: dict[str, Any]) -> str:
    """`assay_token_PORT` for the port this request came in on (plain `assay_token` if unknown)."""
    server = scope.get("server") or (None, None)
    return f"{COOKIE}_{server[1]}" if server[1] else COOKIE


def _local_path(path: str) -> str:
    """`path` as a same-site redirect target: `//evil.example/` or `/\\evil.example` would leave the site."""
    return quote("/" + path.lstrip("/\\"), safe="/-._~!$&'()*+,;=:@")


Allowed = tuple[frozenset[str], tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]]


def _allowed(entries: list[str]) -> Allowed:
    names, nets = set(), []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]")))
        except ValueError:
            names.add(entry.lower())
    return frozenset(names), tuple(nets)


def _host_allowed(header: str, allowed: Allowed) -> bool:
    match = _HOST.fullmatch(header.lower())
    if not match:
        return False
    host = match.group(1)
    names, nets = allowed
    if host in names:
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in nets)


async def _reply(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode() if message else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
