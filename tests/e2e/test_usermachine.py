"""The two commands on a user's machine, simulated (project issue 13).

A user's machine has Docker running without the test bed's registry mirror,
its registry (Docker Hub) serves the official ``debian:*-slim`` images, and
the user is in the group that owns the engine's socket, not root. Simulated
here by ``scripts/secondhost --online``: a second dockerd with its own socket
and data root, whose registry mirror is a registry on 127.0.0.1:5001 that
serves ``debian:trixie-slim`` and ``debian:bookworm-slim`` with digests other
than the test bed's (the test bed's images, re-tarred with a marker file).

As a new user in the socket's group only: ``scripts/testbed`` succeeds there
without building stand-ins, starting a registry or needing root, and a small
freeze -> build -> verify passes on the official base.
"""

from __future__ import annotations

import contextlib
import grp
import io
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relock.lock import lockfile
from tests.conftest import ROOT, secondhost, skip_or_fail

pytestmark = [pytest.mark.engine, pytest.mark.slow]

# The user, its group and the engine's instance name: this run's alone.
USER = GROUP = NAME = f"relock-um-{uuid.uuid4().hex[:6]}"
TAGS = ("trixie-slim", "bookworm-slim")
APP = (
    "FROM debian:trixie-slim\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends tini \\\n"
    " && rm -rf /var/lib/apt/lists/*\n"
)


@dataclass
class UserMachine:
    docker_host: str
    client: Any
    home: Path
    registry: str                                            # its mirror, host:port
    digests: dict[str, str] = field(default_factory=dict)   # tag -> "official" digest

    def run(self, *args: str | Path, cwd: Path | None = None, timeout: int = 1200,
            **env: str) -> subprocess.CompletedProcess[str]:
        """Run a command as the user, with a login-like environment of its own."""
        user_env = {
            "HOME": str(self.home), "USER": USER, "LOGNAME": USER, "LANG": "C.UTF-8",
            "PATH": f"{self.home / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "DOCKER_HOST": self.docker_host, **env,
        }
        return subprocess.run(
            ["runuser", "-u", USER, "--", "env", "-i",
             *(f"{k}={v}" for k, v in user_env.items()), *map(str, args)],
            cwd=cwd or self.home, capture_output=True, text=True, timeout=timeout, check=False)


def _official_variant(client: Any, tag: str, out: Path) -> None:
    """The root file system of the test bed's ``debian:<tag>`` as a tar, plus a
    marker file: the same Debian, other bytes, so another registry digest."""
    exported = out.with_suffix(".export")
    container = client.containers.create(f"debian:{tag}", ["true"], entrypoint=[],
                                         network_mode="none")
    try:
        with exported.open("wb") as f:
            for chunk in container.export():
                f.write(chunk)
    finally:
        container.remove(force=True)
    with tarfile.open(exported) as src, tarfile.open(out, "w") as dst:
        for member in src:
            # What the engine adds to every container is not the image's.
            if member.name.lstrip("./") in (".dockerenv", "etc/hostname", "etc/hosts",
                                            "etc/resolv.conf"):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        marker = b"The simulated official image of relock's tests/e2e/test_usermachine.py\n"
        info = tarfile.TarInfo("etc/relock-usermachine")
        info.size, info.mode, info.mtime = len(marker), 0o644, 1700000000
        dst.addfile(info, io.BytesIO(marker))
    exported.unlink()


def _publish(um: Any, registry: str, image_tar: Path, tag: str) -> str:
    """Import ``image_tar`` into the user's engine, push it to its mirror as
    ``library/debian:<tag>``, drop the local tag; return the registry digest."""
    repo = f"{registry}/library/debian"
    um.api.import_image_from_file(str(image_tar), repository=repo, tag=tag,
                                  changes=['CMD ["bash"]'])
    digest = ""
    try:
        for chunk in um.images.push(repo, tag=tag, stream=True, decode=True):
            assert "error" not in chunk, chunk
            digest = (chunk.get("aux") or {}).get("Digest", digest)
    finally:
        um.images.remove(f"{repo}:{tag}")
    assert digest.startswith("sha256:"), digest
    return str(digest)


def _user_venv(home: Path) -> None:
    """``relock`` for the user, in ``home/venv``.

    The project's .venv may sit on an interpreter only root can read (a pyenv
    build under /root, as on this project's machines), so the user gets a
    venv on the system's Python of the same version that reads the project
    venv's packages.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.fail(f"no python{version} in /usr/local/bin:/usr/bin:/bin for the user")
    venv = home / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    project = ROOT / ".venv" / "lib" / f"python{version}" / "site-packages"
    assert project.is_dir(), project
    (venv / "lib" / f"python{version}" / "site-packages" / "relock-project.pth").write_text(
        f"import site; site.addsitedir({str(project)!r})\n")
    script = venv / "bin" / "relock"
    script.write_text(f"#!{venv / 'bin' / 'python'}\n"
                      "import sys\nfrom relock.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    subprocess.run(["chown", "-R", f"{USER}:{GROUP}", str(home)], check=True)


@contextlib.contextmanager
def _user_and_group(home: Path) -> Iterator[None]:
    for name, db in ((USER, pwd.getpwnam), (GROUP, grp.getgrnam)):
        with contextlib.suppress(KeyError):
            db(name)
            pytest.fail(f"{name} already exists on this machine (a crashed run?); remove it "
                        f"(userdel {USER}; groupdel {GROUP}) and re-run")
    subprocess.run(["groupadd", "--system", GROUP], check=True)
    try:
        subprocess.run(["useradd", "--system", "--gid", GROUP, "--home-dir", str(home),
                        "--no-create-home", "--shell", "/bin/bash", USER], check=True)
        uid = pwd.getpwnam(USER).pw_uid
        try:
            shutil.chown(home, USER, GROUP)
            _user_venv(home)
            yield
        finally:
            subprocess.run(["userdel", USER], check=False)
            # What scripts/testbed logs for a user who may not write /var/log.
            Path(f"/tmp/relock-testbed-images.{uid}.log").unlink(missing_ok=True)
    finally:
        with contextlib.suppress(KeyError):   # userdel may have removed it
            grp.getgrnam(GROUP)
            subprocess.run(["groupdel", GROUP], check=False)


@pytest.fixture(scope="module")
def user_machine(client: Any) -> Iterator[UserMachine]:
    import docker

    if os.geteuid() != 0:
        skip_or_fail("simulating a user's machine needs root (a user, a group, a dockerd)")
    home = Path(tempfile.mkdtemp(prefix="relock-um-", dir="/tmp"))
    try:
        with _user_and_group(home):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = str(s.getsockname()[1])
            done = secondhost(NAME, "--online", "start", "--group", GROUP,
                              RELOCK_USERMACHINE_PORT=port)
            try:
                assert done.returncode == 0, done.stdout + done.stderr
                docker_host = secondhost(NAME, "--online", "env").stdout.strip().split("=", 1)[1]
                um = docker.DockerClient(base_url=docker_host, timeout=600)
                machine = UserMachine(docker_host, um, home, f"127.0.0.1:{port}")
                for tag in TAGS:
                    tar = home / f"{tag}.tar"
                    _official_variant(client, tag, tar)
                    machine.digests[tag] = _publish(um, machine.registry, tar, tag)
                    tar.unlink()
                try:
                    yield machine
                finally:
                    um.close()
            finally:
                stopped = secondhost(NAME, "--online", "stop", RELOCK_USERMACHINE_PORT=port)
                assert stopped.returncode == 0, stopped.stdout + stopped.stderr
                shutil.rmtree(Path("/var/log") / NAME, ignore_errors=True)  # kept on failure
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _repo_digest(client: Any, ref: str) -> str:
    digests = client.images.get(ref).attrs.get("RepoDigests") or []
    return str(next(d.split("@", 1)[1] for d in digests if d.startswith("debian@")))


def test_testbed_then_freeze_build_verify_as_a_docker_group_user(
        client: Any, user_machine: UserMachine) -> None:
    um = user_machine
    for tag, digest in um.digests.items():
        assert digest != _repo_digest(client, f"debian:{tag}"), "not another digest"

    # The user is not root and may not use the test bed's engine.
    me = um.run("id", "-u")
    assert me.returncode == 0 and me.stdout.strip() != "0"
    denied = um.run("docker", "-H", "unix:///var/run/docker.sock", "version")
    assert denied.returncode != 0

    started = time.monotonic()
    setup = um.run(ROOT / "scripts" / "testbed")
    took = time.monotonic() - started
    out = setup.stdout + setup.stderr
    assert setup.returncode == 0, out
    print(f"\nscripts/testbed on the simulated user machine: {took:.1f} s\n{out}")
    for word in ("making a stand-in", "debootstrap", "starting", "installing", "pushing"):
        assert word not in out, out
    tags = sorted(t for image in um.client.images.list() for t in image.tags)
    assert tags == [f"debian:{tag}" for tag in sorted(TAGS)]
    for tag, digest in um.digests.items():
        assert _repo_digest(um.client, f"debian:{tag}") == digest
    check = um.run(ROOT / "scripts" / "testbed", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "registry: none needed" in check.stdout

    # freeze -> build -> verify, as that user, on the official base.
    app = um.home / "app"
    app.mkdir()
    (app / "Dockerfile.in").write_text(APP)
    shutil.chown(app, USER, GROUP)
    shutil.chown(app / "Dockerfile.in", USER, GROUP)
    steps = [
        ("docker", "build", "--network", "host", "-t", "relock-um-app:latest",
         "-f", "Dockerfile.in", "."),
        ("relock", "freeze", "relock-um-app:latest", "-f", "Dockerfile.in", "-o", "app.lock"),
        ("relock", "build", "--lock", "app.lock", "-t", "relock-um-app:pinned", "--apt-live",
         "--quiet"),
        ("relock", "verify", "relock-um-app:pinned", "--lock", "app.lock"),
    ]
    for step in steps:
        done = um.run(*step, cwd=app, DOCKER_BUILDKIT="0")
        assert done.returncode == 0, f"{step}:\n{(done.stdout + done.stderr)[-3000:]}"
    lock = lockfile.read(app / "app.lock")
    assert [(b.ref, b.digest) for b in lock.base] == [
        ("debian:trixie-slim", um.digests["trixie-slim"])]
    assert "tini" in {p.name for p in lock.apt}
