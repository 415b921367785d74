"""Settings relock reads from its environment: DOCKER_HOST, time-outs, pip's configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relock.errors import IndexError_, RelockError
from relock.upstream.index import parse_timeout
from tests.hostile.contract import invoke, one_line_error


# Issue 12's review: B1.
@pytest.mark.parametrize("host", ["tcp://127.0.0.1:99999", "tcp://[::1"])
def test_a_docker_host_that_cannot_be_an_address_is_refused(tmp_path: Path, host: str) -> None:
    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "x.lock"
    r = invoke("freeze", "img", "-f", str(template), "-o", str(out), "--no-index",
               env={"DOCKER_HOST": host})
    one_line_error(r, "DOCKER_HOST")
    assert not out.exists()


# Issue 12's review: B1.
@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", "inf", ""])
def test_a_bad_index_time_out_is_refused(text: str) -> None:
    with pytest.raises(IndexError_, match="not a positive number of seconds"):
        parse_timeout(text)


# Issue 12's review: B1.
@pytest.mark.parametrize("text", ["soon", "0", "-1", "nan"])
def test_a_bad_http_time_out_is_refused(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.upstream import http

    monkeypatch.setenv("RELOCK_HTTP_TIMEOUT", text)
    with pytest.raises(RelockError, match="RELOCK_HTTP_TIMEOUT"):
        http.Limits.from_env()


def test_pip_config_read_through_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 item 7: pip's files and PIP_* variables, with pip's precedence, no internals."""
    from relock.upstream.index import pip_config

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:1/simple\n"
                    "extra-index-url = http://127.0.0.1:2/a\n  http://127.0.0.1:3/b\n"
                    "trusted-host = 127.0.0.1:2\ncert = /etc/ssl/x.pem\ntimeout = 7\n"
                    "[install]\nextra-index-url = http://127.0.0.1:4/c\n")
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_CERT", "/etc/ssl/env.pem")
    got = pip_config()
    assert got.urls == ("http://127.0.0.1:1/simple", "http://127.0.0.1:4/c")
    assert got.cert == "/etc/ssl/env.pem"
    assert got.trusted_hosts == ("127.0.0.1:2",)
    assert got.timeout == 7.0
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "soon")
    with pytest.raises(IndexError_, match=r"cannot read pip's configuration .*'soon'") as e:
        pip_config()
    assert "\n" not in str(e.value)


def test_pip_config_without_index_url_takes_pip_s_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.upstream.index import pip_config

    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    got = pip_config()
    assert len(got.urls) == 1 and got.urls[0].startswith("https://")
    assert got.urls[0].endswith("/simple")
