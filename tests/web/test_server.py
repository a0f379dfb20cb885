"""Binding rules of `assay ui`: loopback by default, remote only when asked, with a token."""

from __future__ import annotations

import socket

import pytest

from assay.errors import ConfigError
from assay.web.server import is_loopback, plan
from tests.conftest import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.com")


def test_remote_bind_needs_the_flag_and_gets_a_token():
    with pytest.raises(ConfigError, match="--allow-remote"):
        plan("0.0.0.0", _free_port(), allow_remote=False, token=None)
    p = plan("0.0.0.0", _free_port(), allow_remote=True, token=None)
    assert p.remote and p.token and len(p.token) >= 24 and p.url.endswith(f"?token={p.token}")
    assert plan("0.0.0.0", _free_port(), allow_remote=True, token="mine-is-long-enough").token == "mine-is-long-enough"
    local = plan("127.0.0.1", _free_port(), allow_remote=False, token=None)
    assert not local.remote and local.token and len(local.token) >= 24  # loopback gets a token too
    assert plan("127.0.0.1", _free_port(), allow_remote=False, token=None, no_token=True).token is None


def test_port_in_use_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{port}"):
            plan("127.0.0.1", port, allow_remote=False, token=None)


def test_cli_refuses_a_remote_host_without_the_flag(lab):
    out = run_cli("ui", "--host", "0.0.0.0", "--port", str(_free_port()), cwd=lab.root)
    assert out.returncode == 2 and "--allow-remote" in out.stderr
