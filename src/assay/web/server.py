"""Serving the dashboard with uvicorn: bind checks first, so mistakes are errors, not tracebacks."""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from dataclasses import dataclass

from assay.errors import ConfigError
from assay.lab import Lab

# Host headers accepted when serving on loopback: the names, and every loopback address (a
# --host 127.0.0.2 is reached as 127.0.0.2). IP literals cannot be rebound by DNS.
LOOPBACK_NAMES = ["localhost", "127.0.0.0/8", "::1"]
MIN_TOKEN = 16
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")  # it travels in a URL and a cookie unescaped


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Plan:
    """Where and how the dashboard will listen."""

    host: str
    port: int
    token: str | None
    remote: bool

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")


def plan(host: str, port: int, allow_remote: bool, token: str | None, *, no_token: bool = False,
         token_from: str = "--token") -> Plan:
    """Check the bind address, port and token before serving; a non-loopback host needs `allow_remote`.

    Without a token of the user's, a fresh random one is made, on loopback too: on a shared machine
    every local user can reach 127.0.0.1, and the lab's logs and diffs are not for all of them.
    `no_token` opts out, on loopback only.

    Raises:
        ConfigError: a non-loopback host without allow_remote, --no-token on a remote bind or with a
            token, a token under 16 characters or with characters a URL would mangle, a bad port,
            or a port in use.
    """
    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise ConfigError(f"Refusing to serve on '{host}': it is reachable from other machines",
                          "Pass --allow-remote to mean it (a token is required then), or keep the default --host 127.0.0.1.")
    if no_token and remote:
        raise ConfigError(f"--no-token is refused on '{host}': it is reachable from other machines",
                          "Drop --no-token (a random token is printed in the URL), or serve on --host 127.0.0.1.")
    if no_token and token:
        raise ConfigError(f"Both --no-token and a token (from {token_from}) were given", "Pass one of them.")
    if token is not None:
        _check_token(token, token_from)
    if not 0 < port < 65536:
        raise ConfigError(f"Port {port} is out of range", "Pass --port 8765 (1-65535).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror or exc})",
                              f"Pick another port: assay ui --port {port + 1}") from None
    if not token and not no_token:
        token = secrets.token_urlsafe(24)
    return Plan(host, port, token, remote)


def _check_token(token: str, source: str) -> None:
    if len(token) < MIN_TOKEN:
        raise ConfigError(f"The token from {source} has {len(token)} characters; at least {MIN_TOKEN} are needed",
                          "Leave it out to get a random one, or make one: python -c 'import secrets; print(secrets.token_urlsafe(24))'")
    if not _TOKEN.fullmatch(token):
        raise ConfigError(f"The token from {source} holds characters other than letters, digits and ._~-",
                          "Leave it out to get a random one, or make one: python -c 'import secrets; print(secrets.token_urlsafe(24))'")


def serve(lab: Lab, p: Plan) -> None:
    """Serve the dashboard until interrupted (blocks)."""
    import uvicorn

    from assay.web.app import create_app

    hosts = None if p.remote else LOOPBACK_NAMES
    app = create_app(lab, token=p.token, allowed_hosts=hosts)
    uvicorn.run(app, host=p.host.strip("[]"), port=p.port, log_level="warning", access_log=False)
