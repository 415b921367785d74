"""Templates as real projects write them: the pinned build means what the template means.

Each case is built the ordinary way (unpinned), frozen, and rebuilt with
``relock build``. The installs stay as written (``activate``, a venv at a
path relative to WORKDIR, ``pip install -U pip`` then a requirements file,
three pip layers, ``uv pip``, exec-form RUN, ``apt`` instead of ``apt-get``,
apt in a script the template runs, a builder stage with ``pip --user``, an
ARG-parameterised FROM without a default, ``python -m pip`` into the system
site, ``COPY . .``, a template named ``Dockerfile``); the locked view is all
they see. The truth is taken from the images themselves (dpkg-query and pip
run inside them), not from relock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from relock.cli import cli
from relock.lock.lockfile import Lock, read
from tests.conftest import BuildImage, run_in

pytestmark = [pytest.mark.engine, pytest.mark.slow]

APP = """\
FROM debian:trixie-slim
ENV UV_NATIVE_TLS=1
RUN apt update && apt install -y --no-install-recommends python3-venv \\
 && rm -rf /var/lib/apt/lists/*
COPY scripts/tools.sh /usr/local/bin/tools.sh
RUN ["/bin/sh", "-c", "apt-get update && sh /usr/local/bin/tools.sh && rm -rf /var/lib/apt/lists/*"]
WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv venv && . venv/bin/activate \\
    # the newest pip first, as many projects do
 && pip install --no-cache-dir -U pip \\
 && pip install --no-cache-dir -r requirements.txt
RUN venv/bin/pip install --no-cache-dir idna uv
RUN venv/bin/uv pip install --no-cache --python venv/bin/python certifi
COPY . .
"""

STAGES = """\
ARG CODENAME
FROM debian:${CODENAME}-slim AS builder
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip \\
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/
RUN pip install --no-cache-dir --user --break-system-packages -r /tmp/requirements.txt

FROM debian:${CODENAME}-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /root/.local /root/.local
RUN python3 -m pip install --no-cache-dir --break-system-packages idna
WORKDIR /srv
COPY . .
"""

FILES = {
    "app": {"requirements.txt": "six==1.17.0\n",
            "scripts/tools.sh": "#!/bin/sh\nset -e\napt-get install -y --no-install-recommends "
                                "tini\n",
            "src/main.py": "print('hello')\n"},
    "stages": {"requirements.txt": "six==1.17.0\n", "src/app.py": "print('hi')\n"},
}


def relock(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Case:
    """An unpinned image, its lock, and the pinned rebuild of it."""

    name: str
    context: Path
    lock_path: Path
    build_args: tuple[str, ...]
    unpinned: str
    pinned: str
    built: Result
    context_before: dict[str, str]

    @property
    def lock(self) -> Lock:
        return read(self.lock_path)


@pytest.fixture(scope="module", params=["app", "stages"])
def case(request: pytest.FixtureRequest, client: Any, docker_engine: Any,
         build_image: BuildImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    from relock.build.enginebuild import build
    from relock.image.buildkit import select

    name = str(request.param)
    root = tmp_path_factory.mktemp(name)
    context = root / "ctx"
    text = APP if name == "app" else STAGES
    args = () if name == "app" else ("--build-arg", "CODENAME=bookworm")
    if name == "app":
        unpinned = build_image(context, text, name="fidelity-app", files=FILES[name],
                               dockerfile="Dockerfile")
    else:
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(text)
        for rel, body in FILES[name].items():
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            (context / rel).write_text(body)
        unpinned = f"relock-test-fidelity-stages:{uuid.uuid4().hex[:8]}"
        # Built as `docker build` builds it here, with the builder relock builds with
        # (BuildKit where the engine has it: its WORKDIR makes a layer, the classic one's not).
        build(select(docker_engine), context, "Dockerfile", tag=unpinned,
              build_args={"CODENAME": "bookworm"})
    lock_path = root / "locks" / f"{name}.lock"
    frozen = relock("freeze", unpinned, "-f", context / "Dockerfile", *args, "-o", lock_path)
    assert frozen.exit_code == 0, frozen.output
    before = tree(context)
    pinned = f"relock-test-fidelity-{name}-pinned:{uuid.uuid4().hex[:8]}"
    # No -f and no --build-arg: the lock names the template and its arguments.
    built = relock("build", "--lock", lock_path, "-t", pinned, "-q")
    try:
        yield Case(name, context, lock_path, args, unpinned, pinned, built, before)
    finally:
        from docker.errors import DockerException

        for image in (pinned, "" if name == "app" else unpinned):
            if image:
                with contextlib.suppress(DockerException):
                    client.images.remove(image, force=True)


def apt_set(client: Any, image: str) -> set[str]:
    out = run_in(client, image, ["dpkg-query", "-W", "-f",
                                 "${binary:Package} ${Version} ${db:Status-Status}\n"])
    return {line for line in out.splitlines() if line.endswith(" installed")}


def pip_sets(client: Any, image: str) -> str:
    script = (
        "for py in /app/venv/bin/python /usr/bin/python3; do [ -x $py ] || continue; "
        "echo \"== $py\"; $py -m pip list --format=freeze --disable-pip-version-check "
        "2>/dev/null || $py -c 'import importlib.metadata as m; "
        "print(sorted(d.name+\"==\"+d.version for d in m.distributions()))'; done"
    )
    return run_in(client, image, ["sh", "-c", script])


def test_pinned_build_verifies(case: Case) -> None:
    assert case.built.exit_code == 0, case.built.output
    assert f"{case.pinned} matches {case.lock_path}" in case.built.stdout


def test_lock_records_template_and_build_args(case: Case) -> None:
    lock = case.lock
    assert lock.input.dockerfile == str(case.context / "Dockerfile")
    expected = {"CODENAME": "bookworm"} if case.name == "stages" else {}
    assert dict(lock.input.build_args) == expected
    header = case.lock_path.read_text().splitlines()[1]
    assert header.startswith(f"# Remake it with: relock freeze {case.unpinned} -f ")
    assert (" --build-arg CODENAME=bookworm" in header) is (case.name == "stages")
    # Every APT package carries what a pinned build checks it by.
    assert all(len(p.sha256) == 64 and p.filename.startswith("pool/") for p in lock.apt)


def test_template_and_context_untouched(case: Case) -> None:
    assert tree(case.context) == case.context_before
    assert not (case.context / "Dockerfile.relock").exists()


def test_same_contents_as_the_unpinned_image(client: Any, case: Case) -> None:
    assert apt_set(client, case.pinned) == apt_set(client, case.unpinned)
    assert pip_sets(client, case.pinned) == pip_sets(client, case.unpinned)
    folder = "/app" if case.name == "app" else "/srv"
    listing = ["sh", "-c", f"cd {folder} && find . -path ./venv -prune -o -print | sort"]
    # COPY . . copies the context and nothing of relock's.
    assert run_in(client, case.pinned, listing) == run_in(client, case.unpinned, listing)
    assert run_in(client, case.pinned, ["ls", "-A", "/dev/shm"]) == ""


def test_same_layers_as_the_unpinned_image(client: Any, case: Case) -> None:
    raw = client.images.get(case.unpinned).attrs["RootFS"]["Layers"]
    pinned = client.images.get(case.pinned).attrs["RootFS"]["Layers"]
    assert len(pinned) == len(raw)
    base = case.lock.base[-1]
    bottom = client.images.get(f"debian@{base.digest}").attrs["RootFS"]["Layers"]
    assert pinned[: len(bottom)] == raw[: len(bottom)] == bottom


def test_diff_of_the_two_images_is_empty(case: Case) -> None:
    result = relock("diff", case.unpinned, case.pinned, "-f", case.context / "Dockerfile",
                    *case.build_args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no differences")


def test_changed_requirements_fail_naming_the_package(case: Case, tmp_path: Path) -> None:
    requirements = case.context / "requirements.txt"
    old = requirements.read_text()
    requirements.write_text("six==1.16.0\n")
    try:
        result = relock("build", "--lock", case.lock_path, "-q", "--no-verify")
    finally:
        requirements.write_text(old)
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("relock: error: six==1.16.0 is not in the lock (it has 1.17.0)"), last


def test_from_arg_without_default_needs_a_build_arg(case: Case) -> None:
    if case.name != "stages":
        pytest.skip("the stages template has the ARG")
    result = relock("freeze", case.unpinned, "-f", case.context / "Dockerfile", "-o",
                    case.lock_path.with_suffix(".other"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"relock: error: {case.context / 'Dockerfile'}:2: FROM uses ARG CODENAME, which has no "
        "default; pass --build-arg CODENAME=VALUE (relock records it in the lock)")


def test_render_never_overwrites_the_template(case: Case) -> None:
    template = case.context / "Dockerfile"
    result = relock("render", "--lock", case.lock_path, "-o", template)
    assert result.exit_code == 2
    assert "is the template itself" in result.stderr
    out = case.lock_path.parent / "Dockerfile.relock"
    result = relock("render", "--lock", case.lock_path, "-o", out)
    assert result.exit_code == 0, result.output
    assert json.dumps(tree(case.context)) == json.dumps(case.context_before)
    assert "/dev/shm/relock" in out.read_text()
