"""`relock freeze` against real images built by the test bed's engine.

The truth is taken independently: `dpkg-query -W` and `pip list` run inside
the image by the test (relock itself only reads files).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.freeze.freeze import FreezeOptions, freeze_image, take_inventory
from relock.image import engine
from relock.image.engine import DockerEngine
from relock.lock import lockfile
from relock.template.dockerfile import load
from tests.conftest import BuildImage, StoreEngine, run_in

pytestmark = pytest.mark.engine

MULTISTAGE = """\
ARG BASE=debian:trixie-slim
FROM ${BASE} AS builder
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \\
    && python3 -m venv /opt/venv \\
    && /opt/venv/bin/pip install --no-cache-dir six==1.16.0 idna
FROM ${BASE}
COPY --from=builder /opt/venv /opt/venv
RUN apt-get update && apt-get install -y --no-install-recommends \\
      python3 python3-pip tini \\
    && python3 -m pip install --no-cache-dir --break-system-packages attrs==25.3.0 \\
    && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture(scope="module")
def sci(build_image: BuildImage, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    ctx = tmp_path_factory.mktemp("multistage")
    return build_image(ctx, MULTISTAGE, name="multistage"), ctx


def freeze(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["freeze", *args], catch_exceptions=False, env=env)


def test_lock_matches_what_runs_in_the_image(client: Any, docker_engine: DockerEngine,
                                             sci: tuple[str, Path]) -> None:
    tag, ctx = sci
    out = ctx / "locks" / "sci.lock"
    result = freeze([tag, "-f", str(ctx / "Dockerfile.in"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    # The builder stage's own packages are recorded too, apart (stage = its name);
    # the final image is what runs.
    full = lockfile.read(out)
    lock = full.final()
    assert {p.stage for p in full.apt} - {""}, "the build stage's packages are recorded"

    dpkg = run_in(client, tag, ["dpkg-query", "-W", "-f",
                                "${Package} ${Version} ${Architecture}\n"])
    truth = {tuple(line.split()) for line in dpkg.splitlines()}
    assert {(p.name, p.version, p.arch) for p in lock.apt} == truth
    auto = set(run_in(client, tag, ["apt-mark", "showauto"]).split())
    assert {p.name for p in lock.apt if p.auto} == auto
    assert "libffi8" in auto and "tini" not in auto

    venv = json.loads(run_in(client, tag, ["/opt/venv/bin/python", "-m", "pip", "list",
                                           "--format", "json"]))
    system = json.loads(run_in(client, tag, [
        "python3", "-m", "pip", "list", "--format", "json", "--path",
        "/usr/local/lib/python3.13/dist-packages"]))
    want = {("/opt/venv", d["name"].lower(), d["version"]) for d in venv}
    want |= {("/usr/local", d["name"].lower(), d["version"]) for d in system}
    assert {(p.env, p.name, p.version) for p in lock.pip} == want
    assert all(p.hashes and all(h.startswith("sha256:") for h in p.hashes) for p in lock.pip)

    # Both FROMs resolve to the registry digest the engine recorded.
    digest = docker_engine.image("debian:trixie-slim").digests_for("debian:trixie-slim")[0]
    assert [(b.stage, b.ref, b.digest) for b in lock.base] == [
        (0, "debian:trixie-slim", digest), (1, "debian:trixie-slim", digest)]
    assert lock.distro.id == "debian" and lock.distro.codename == "trixie"
    assert lock.snapshot_from == "image-created" and len(lock.snapshot) == 16
    assert {s.uris[0].rsplit("/", 1)[-1] for s in lock.apt_sources} == {
        "debian", "debian-security"}
    assert {e.prefix: e.venv for e in lock.python} == {"/opt/venv": True, "/usr/local": False}


def test_two_freezes_give_identical_bytes(sci: tuple[str, Path], tmp_path: Path) -> None:
    tag, ctx = sci
    out = tmp_path / "a.lock"
    assert freeze([tag, "-f", str(ctx / "Dockerfile.in"), "-o", str(out)]).exit_code == 0
    first = out.read_bytes()
    assert freeze([tag, "-f", str(ctx / "Dockerfile.in"), "-o", str(out)]).exit_code == 0
    assert out.read_bytes() == first


def test_export_fallback_reads_the_same_as_overlay_layers(
        overlay2_engine: StoreEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path reads the overlay2 store's layer folders: the test bed's engine of
    # that store (the containerd store has no such folders and always exports).
    from relock.build.enginebuild import build

    o2 = overlay2_engine
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:trixie-slim\n"
        "RUN mkdir -p /opt/venv/lib/python3.13/site-packages/demo-1.0.dist-info \\\n"
        " && printf 'home = /usr/bin\\nversion = 3.13.5\\n' > /opt/venv/pyvenv.cfg \\\n"
        " && printf 'Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n' \\\n"
        "      > /opt/venv/lib/python3.13/site-packages/demo-1.0.dist-info/METADATA \\\n"
        " && rm /usr/share/doc/gzip/copyright\n")
    tag = f"relock-test-fallback:{uuid.uuid4().hex[:8]}"
    build(o2.engine, tmp_path, "Dockerfile", tag=tag)
    try:
        image = o2.engine.image(tag)
        assert engine._overlay_layers(o2.client.images.get(tag).attrs) is not None
        with o2.engine.open_rootfs(image) as fs:
            fast = take_inventory(fs)
            assert fs.read_bytes("usr/share/doc/gzip/copyright") is None  # a whiteout
        monkeypatch.setattr(engine, "_overlay_layers", lambda attrs: None)
        with o2.engine.open_rootfs(image) as fs:
            slow = take_inventory(fs)
        assert fast == slow
        assert [(d.name, d.version) for d in fast.dists] == [("demo", "1.0")]
        assert not [c for c in o2.client.containers.list(all=True) if c.image.id == image.id]
    finally:
        o2.client.images.remove(tag, force=True)


def test_freeze_reads_only_files(client: Any, docker_engine: DockerEngine,
                                 sci: tuple[str, Path]) -> None:
    tag, ctx = sci
    assert (ctx / "Dockerfile.in").exists()
    before = {c.id for c in client.containers.list(all=True)}
    freeze_image(docker_engine, tag, load(ctx / "Dockerfile.in"), FreezeOptions(index=None))
    assert {c.id for c in client.containers.list(all=True)} == before


def test_bookworm_image(build_image: BuildImage, tmp_path: Path, client: Any) -> None:
    tag = build_image(tmp_path, "FROM debian:bookworm-slim\n"
                      "RUN apt-get update && apt-get install -y --no-install-recommends less\n",
                      name="bookworm")
    out = tmp_path / "b.lock"
    assert freeze([tag, "-f", str(tmp_path / "Dockerfile.in"), "-o", str(out)]).exit_code == 0
    lock = lockfile.read(out)
    assert lock.distro.codename == "bookworm"
    # apt's lists are still in this image, so the snapshot comes from their Date.
    assert lock.snapshot_from == "release-date"
    assert any(p.name == "less" and not p.auto for p in lock.apt)
    # ... and the .deb hashes from the (lz4-compressed) Packages indexes.
    assert all(len(p.sha256) == 64 for p in lock.apt if p.name == "less")
    dpkg = run_in(client, tag, ["dpkg-query", "-W", "-f", "${Package}\n"])
    assert {p.name for p in lock.apt} == set(dpkg.split())


# -- bad input: one line on stderr, exit 2, no lock written -------------------------

def test_image_not_found(tmp_path: Path, client: Any) -> None:
    (tmp_path / "Dockerfile.in").write_text("FROM debian:trixie-slim\n")
    out = tmp_path / "x.lock"
    r = freeze(["no-such-image:nope", "-f", str(tmp_path / "Dockerfile.in"), "-o", str(out)])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "relock: error: image 'no-such-image:nope' not found in the engine; "
        "build or pull it first")
    assert not out.exists()


def test_engine_unreachable(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.in").write_text("FROM debian:trixie-slim\n")
    r = freeze(["debian:trixie-slim", "-f", str(tmp_path / "Dockerfile.in"), "-o",
                str(tmp_path / "x.lock")], env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.exit_code == 2
    assert "cannot reach the container engine at unix:///nonexistent.sock" in r.stderr
    assert "Traceback" not in r.output


def test_scratch_image_freezes_what_exists(build_image: BuildImage, tmp_path: Path) -> None:
    tag = build_image(tmp_path, "FROM scratch\nCOPY hello.txt /hello.txt\n", name="scratch",
                      files={"hello.txt": "hi\n"})
    out = tmp_path / "s.lock"
    r = freeze([tag, "-f", str(tmp_path / "Dockerfile.in"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "no /etc/os-release" in r.stderr and "no dpkg database" in r.stderr
    lock = lockfile.read(out)
    assert lock.apt == () and lock.pip == () and lock.base == ()
    assert lock.distro.id == "unknown"


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("# nothing here\nRUN true\n", "has no FROM instruction"),
])
def test_bad_dockerfile(sci: tuple[str, Path], tmp_path: Path, content: str | None,
                        message: str) -> None:
    tag, _ = sci
    df = tmp_path / "Dockerfile.in"
    if content is not None:
        df.write_text(content)
    r = freeze([tag, "-f", str(df), "-o", str(tmp_path / "x.lock")])
    assert r.exit_code == 2 and message in r.stderr
    assert not (tmp_path / "x.lock").exists()


def test_output_folder_not_writable(sci: tuple[str, Path], tmp_path: Path) -> None:
    tag, ctx = sci
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = freeze([tag, "-f", str(ctx / "Dockerfile.in"), "-o", str(blocker / "x.lock")])
    assert r.exit_code == 2
    assert "cannot write here" in r.stderr


def test_index_unreachable_keeps_the_old_lock(sci: tuple[str, Path], tmp_path: Path) -> None:
    tag, ctx = sci
    out = tmp_path / "x.lock"
    out.write_text("the old lock\n")
    r = freeze([tag, "-f", str(ctx / "Dockerfile.in"), "-o", str(out)],
               env={"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "",
                    "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert r.exit_code == 2
    assert "package index http://127.0.0.1:9/simple is unreachable" in r.stderr
    assert out.read_text() == "the old lock\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["x.lock"]


def test_version_missing_from_the_index(sci: tuple[str, Path], tmp_path: Path) -> None:
    tag, ctx = sci
    index = tmp_path / "simple"
    (index / "six").mkdir(parents=True)
    (index / "six" / "index.html").write_text(
        '<a href="six-1.17.0-py2.py3-none-any.whl#sha256=' + "0" * 64 + '">x</a>')
    r = freeze([tag, "-f", str(ctx / "Dockerfile.in"), "-o", str(tmp_path / "x.lock")],
               env={"PIP_INDEX_URL": index.as_uri(), "PIP_EXTRA_INDEX_URL": "",
                    "PIP_CONFIG_FILE": os.devnull, "XDG_CACHE_HOME": str(tmp_path / "c")})
    assert r.exit_code == 2
    assert "==" in r.stderr and "has no files with hashes on the package index" in r.stderr
    assert not (tmp_path / "x.lock").exists()


def test_second_freeze_does_not_ask_the_index(sci: tuple[str, Path], tmp_path: Path) -> None:
    from relock.upstream.index import Index, pip_config

    tag, ctx = sci
    source = engine.connect()
    first = Index(pip_config(), tmp_path / "cache")
    freeze_image(source, tag, load(ctx / "Dockerfile.in"), FreezeOptions(index=first))
    assert first.requests_made > 0
    second = Index(pip_config(), tmp_path / "cache")
    freeze_image(source, tag, load(ctx / "Dockerfile.in"), FreezeOptions(index=second))
    assert second.requests_made == 0


def test_local_base_needs_a_flag(client: Any, build_image: BuildImage, tmp_path: Path) -> None:
    base = build_image(tmp_path / "base", "FROM debian:trixie-slim\nRUN touch /marker\n",
                       name="localbase")
    tag = build_image(tmp_path / "app", f"FROM {base}\nRUN touch /app\n", name="onlocal")
    df = str(tmp_path / "app" / "Dockerfile.in")
    r = freeze([tag, "-f", df, "-o", str(tmp_path / "x.lock")])
    assert r.exit_code == 2 and "has no registry digest" in r.stderr
    assert "--allow-local-base" in r.stderr
    r = freeze([tag, "-f", df, "-o", str(tmp_path / "x.lock"), "--allow-local-base"])
    assert r.exit_code == 0 and "other hosts cannot pull" in r.stderr
    lock = lockfile.read(tmp_path / "x.lock")
    assert lock.base[0].image_id == client.images.get(base).id


# -- --rootfs on a plain folder tree ------------------------------------------------


def test_rootfs_matches_dpkg_query_admindir(client: Any, tmp_path: Path) -> None:
    # The files of the engine's debian:bookworm-slim (a stand-in or the
    # official image: either will do), unpacked into a plain folder.
    root = tmp_path / "root"
    root.mkdir()
    container = client.containers.create("debian:bookworm-slim", ["true"], entrypoint=[],
                                         network_mode="none")
    try:
        archive = tmp_path / "fs.tar"
        with archive.open("wb") as out:
            for chunk in container.export():
                out.write(chunk)
    finally:
        container.remove(force=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.lstrip("./").startswith(("var/lib/dpkg", "etc", "usr/lib/os-release",
                                                       "var/lib/apt"))
                   and (m.isfile() or m.isdir() or m.issym())]
        tar.extractall(root, members=members, filter="fully_trusted")
    out = tmp_path / "rootfs.lock"
    r = freeze(["--rootfs", str(root), "-o", str(out), "-f", str(tmp_path / "none.in")])
    assert r.exit_code == 0, r.output
    lock = lockfile.read(out)
    truth = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f",
         "${Package} ${Version} ${Architecture}\n"],
        check=True, capture_output=True, text=True).stdout
    assert {(p.name, p.version, p.arch) for p in lock.apt} == {
        tuple(line.split()) for line in truth.splitlines()}
    assert len(lock.apt) > 50


def test_rootfs_corrupt_dpkg_status(tmp_path: Path) -> None:
    status = tmp_path / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    status.write_bytes(b"Package: bash\nStatus: install ok\nVersion: 5\n\n\xff\xfe\x00garbage")
    out = tmp_path / "x.lock"
    r = freeze(["--rootfs", str(tmp_path), "-o", str(out), "-f", str(tmp_path / "none")])
    assert r.exit_code == 2
    assert "corrupt dpkg" in r.stderr or "not a text file" in r.stderr
    assert not out.exists()


def test_every_apt_entry_names_its_deb_in_the_real_archive(client: Any, docker_engine: DockerEngine,
                                                            tmp_path: Path) -> None:
    """An image without APT lists: hashes come from its sources' indexes (issue 9)."""
    from relock.upstream.archive import Archive

    image = "debian:trixie-slim"
    assert run_in(client, image, ["sh", "-c", "ls /var/lib/apt/lists | grep -c Packages || :"]
                  ).strip() == "0"
    options = FreezeOptions(index=None, deb_entries=True, archive=Archive(tmp_path))
    result = freeze_image(docker_engine, image, None, options)
    apt = result.lock.apt
    assert apt and not [w for w in result.warnings if "no .deb sha256" in w], result.warnings
    assert not [w for w in result.warnings if "signature" in w or "gpgv" in w], result.warnings
    for p in apt:
        assert len(p.sha256) == 64 and int(p.sha256, 16) >= 0, p
        assert p.filename.startswith("pool/") and p.filename.endswith(".deb"), p
    # The truth, from apt itself: the URI and SHA256 apt would download each one with.
    pins = [f"{p.name}:{p.arch}={p.version}" if p.arch != "all" else f"{p.name}={p.version}"
            for p in apt[:40]]
    out = run_in(client, image, ["sh", "-c", "apt-get update -qq >/dev/null && "
                                 "apt-get download --print-uris " + " ".join(pins)])
    said = {}
    for line in out.splitlines():
        url, _, _, digest = line.split()
        path = urllib.parse.unquote(url.strip("'")).split("/pool/", 1)[1]
        said[path] = digest.removeprefix("SHA256:")
    assert len(said) == len(pins)
    assert {p.filename.removeprefix("pool/"): p.sha256 for p in apt[:40]} == said
