"""Serving the dashboard with uvicorn: bind checks first, so mistakes are errors, not tracebacks."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass

from assay.errors import ConfigError
from assay.lab import Lab

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]", "::1"]


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


def plan(host: str, port: int, allow_remote: bool, token: str | None) -> Plan:
    """Check the bind address and port before serving; a non-loopback host needs `allow_remote`.

    A remote bind without a token gets a fresh random one: the lab's logs and diffs are not for
    everyone on the network.

    Raises:
        ConfigError: a non-loopback host without allow_remote, a bad port, or a port in use.
    """
    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise ConfigError(f"Refusing to serve on '{host}': it is reachable from other machines",
                          "Pass --allow-remote to mean it (a token is required then), or keep the default --host 127.0.0.1.")
    if not 0 < port < 65536:
        raise ConfigError(f"Port {port} is out of range", "Pass --port 8765 (1-65535).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror or exc})",
                              f"Pick another port: assay ui --port {port + 1}") from None
    if remote and not token:
        token = secrets.token_urlsafe(24)
    return Plan(host, port, token, remote)


def serve(lab: Lab, p: Plan) -> None:
    """Serve the dashboard until interrupted (blocks)."""
    import uvicorn

    from assay.web.app import create_app

    hosts = None if p.remote else LOOPBACK_NAMES
    app = create_app(lab, token=p.token, allowed_hosts=hosts)
    uvicorn.run(app, host=p.host.strip("[]"), port=p.port, log_level="warning", access_log=False)
