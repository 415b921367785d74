"""The second host (scripts/secondhost) is offline: only its own loopback answers.

A container of the second engine, on that engine's host network, cannot reach
the Python index pip is configured with nor Debian's archive named in this
machine's apt sources, by name or by address; the registry the second host
runs on its own 127.0.0.1:5000 answers. The same addresses answer from this
machine, so the probe itself works.
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SecondHost

pytestmark = pytest.mark.engine

APT_SOURCES = Path("/etc/apt")


def _apt_uris() -> list[str]:
    """The http(s) URIs of this machine's Debian archive (one-line and deb822 sources)."""
    files = [APT_SOURCES / "sources.list", *sorted((APT_SOURCES / "sources.list.d").glob("*"))]
    uris: list[str] = []
    for f in files:
        if not f.is_file() or f.suffix not in (".list", ".sources", ""):
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".sources":
            uris += [u for m in re.finditer(r"(?mi)^URIs:(.*)$", text) for u in m.group(1).split()]
        else:
            uris += re.findall(r"(?m)^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text)
    return [u for u in uris if u.startswith(("http://", "https://"))
            and urllib.parse.urlsplit(u).path.rstrip("/").endswith(("/debian",
                                                                    "/debian-security"))]


def _index_url() -> str:
    from relock.upstream.index import pip_config

    urls = [u for u in pip_config().urls if u.startswith(("http://", "https://"))]
    if not urls:
        pytest.fail("pip's configuration names no http(s) index")
    return urls[0]


def _endpoint(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


# One line per target: "<host> <port> ok|<error>", by bash's /dev/tcp (the
# base image has no curl); `timeout` bounds a connect that hangs.
PROBE = r'''
for t in "$@"; do
  set -- $t
  if out=$(timeout 10 bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1); then echo "$1 $2 ok"
  else echo "$1 $2 ${out:-timed out}" | tr '\n' ' '; echo; fi
done
'''


def _probe(engine: Any, targets: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    out = engine.containers.run("debian:trixie-slim", ["bash", "-c", PROBE, "probe",
                                                       *(f"{h} {p}" for h, p in targets)],
                                network_mode="host", entrypoint=[], remove=True)
    result: dict[tuple[str, int], str] = {}
    for line in out.decode().splitlines():
        host, port, verdict = line.split(" ", 2)
        result[(host, int(port))] = verdict
    return result


def test_second_host_reaches_only_its_own_loopback(second_host: SecondHost) -> None:
    names = {_endpoint(_index_url())} | {_endpoint(u) for u in _apt_uris()}
    assert len(names) >= 2, f"need the index and a Debian archive, found {names}"
    # The same endpoints by address too, so that a missing DNS alone does not
    # pass for being offline; each answers from this machine.
    targets = set(names)
    for host, port in names:
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        targets.add((str(addr), port))
        with socket.create_connection((host, port), timeout=10):
            pass

    second_host.load("debian:trixie-slim")
    seen = _probe(second_host.client, [*sorted(targets), ("127.0.0.1", 5000)])
    assert seen[("127.0.0.1", 5000)] == "ok", seen
    for target in targets:
        assert seen[target] != "ok", f"{target} is reachable from the second host: {seen}"

    # Its registry on loopback is a registry, and the engine's only mirror.
    registry = second_host.client.containers.run(
        "debian:trixie-slim", ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5000; "
                               "printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"],
        network_mode="host", entrypoint=[], remove=True).decode()
    assert re.search(r"(?im)^docker-distribution-api-version: *registry/2", registry), registry
    mirrors = second_host.client.info()["RegistryConfig"]["Mirrors"]
    assert mirrors == ["http://127.0.0.1:5000/"]
