"""The engine's image store read as files: a fake data root laid out like the
engine's, and the real engine of the test bed against the SDK."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from relock.errors import ImageNotFoundError
from relock.image import enginefiles
from relock.image.engine import ImageInfo, _overlay_layers
from relock.image.enginefiles import EngineFiles, local_images, sdk_engine
from relock.lock.platform import Platform
from tests.conftest import StoreEngine

ROOT = Path(__file__).resolve().parents[2]


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Store:
    """A data root with the engine's layout: image/overlay2 and overlay2/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root / "image" / "overlay2"
        (self.store / "imagedb" / "content" / "sha256").mkdir(parents=True)
        (self.store / "imagedb" / "metadata" / "sha256").mkdir(parents=True)
        (self.store / "layerdb" / "sha256").mkdir(parents=True)
        self.repos: dict[str, dict[str, str]] = {}
        self._save()

    def _save(self) -> None:
        (self.store / "repositories.json").write_text(json.dumps({"Repositories": self.repos}))

    def image(self, name: str, layers: dict[str, dict[str, str]], *, arch: str = "amd64",
              variant: str = "", parent: str = "") -> str:
        """An image whose layers (bottom first) hold the given files; its ID."""
        diff_ids = []
        chain = ""
        for label, files in layers.items():
            diff = "sha256:" + _hex(label)
            diff_ids.append(diff)
            chain = diff if not chain else "sha256:" + _hex(f"{chain} {diff}")
            meta = self.store / "layerdb" / "sha256" / chain.removeprefix("sha256:")
            meta.mkdir(exist_ok=True)
            cache_id = _hex("cache " + label)
            (meta / "cache-id").write_text(cache_id)
            for rel, text in files.items():
                path = self.root / "overlay2" / cache_id / "diff" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        config: dict[str, Any] = {
            "architecture": arch, "os": "linux", "created": "2026-01-02T03:04:05.123456789Z",
            "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {"Env": [name]},
        }
        if variant:
            config["variant"] = variant
        data = json.dumps(config).encode()
        hex_id = hashlib.sha256(data).hexdigest()
        (self.store / "imagedb" / "content" / "sha256" / hex_id).write_bytes(data)
        if parent:
            meta = self.store / "imagedb" / "metadata" / "sha256" / hex_id
            meta.mkdir()
            (meta / "parent").write_text(parent)
        return "sha256:" + hex_id

    def tag(self, repo: str, ref: str, image_id: str) -> None:
        self.repos.setdefault(repo, {})[ref] = image_id
        self._save()


class _FakeEngine:
    """Stands for the SDK client: records what the files passed on to it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def image(self, ref: str) -> ImageInfo:
        self.asked.append(ref)
        raise ImageNotFoundError(f"image {ref!r} not found in the engine; build or pull it first")

    def images(self) -> list[ImageInfo]:
        self.asked.append("images")
        return []


@pytest.fixture
def store(tmp_path: Path) -> _Store:
    return _Store(tmp_path / "docker")


def _files(store: _Store) -> tuple[EngineFiles, _FakeEngine]:
    fake = _FakeEngine()
    return EngineFiles(store.root, engine=fake), fake  # type: ignore[arg-type]


DIGEST = "sha256:" + "d" * 64


def test_image_by_tag_digest_and_id(store: _Store) -> None:
    base = store.image("base", {"l1": {"etc/os-release": "ID=debian\n"}}, arch="arm64",
                       variant="v8")
    store.tag("debian", "debian:trixie-slim", base)
    store.tag("debian", f"debian@{DIGEST}", base)
    store.tag("127.0.0.1:5000/library/debian", f"127.0.0.1:5000/library/debian@{DIGEST}", base)
    other = store.image("other", {"l1": {}, "l2": {}})
    store.tag("me/app", "me/app:latest", other)
    files, fake = _files(store)

    want = ImageInfo(
        id=base, layers=("sha256:" + _hex("l1"),),
        repo_digests=(f"127.0.0.1:5000/library/debian@{DIGEST}", f"debian@{DIGEST}"),
        platform=Platform("linux", "arm64", "v8"),
        created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    for ref in ("debian:trixie-slim", "docker.io/library/debian:trixie-slim",
                f"debian@{DIGEST}", base, base.removeprefix("sha256:"), base[:19],
                base[7:19], f"127.0.0.1:5000/library/debian@{DIGEST}"):
        assert files.image(ref) == want, ref
    app = files.image("me/app")  # :latest when no tag is given
    assert app.id == other and app.layers[1] == "sha256:" + _hex("l2")
    assert app.repo_digests == ()
    assert files.image("docker.io/me/app:latest") == app
    assert fake.asked == []


@pytest.mark.parametrize("ref", ["debian:bookworm", "nothere", "sha256:" + "e" * 64,
                                 "Debian:trixie-slim", "debian:trixie-slim@" + DIGEST])
def test_what_the_files_do_not_answer_goes_to_the_engine(store: _Store, ref: str) -> None:
    store.tag("debian", "debian:trixie-slim", store.image("base", {"l1": {}}))
    files, fake = _files(store)
    with pytest.raises(ImageNotFoundError, match="not found in the engine"):
        files.image(ref)
    assert fake.asked == [ref]


def test_an_ambiguous_short_id_goes_to_the_engine(store: _Store) -> None:
    ids = [store.image(str(n), {f"l{n}": {}}) for n in range(40)]
    first = ids[0][7]
    files, fake = _files(store)
    with pytest.raises(ImageNotFoundError):
        files.image(first)  # 40 IDs: more than one starts with this digit
    assert fake.asked == [first]


@pytest.mark.parametrize("key", ["created", "os", "architecture"])
def test_a_config_without_a_field_goes_to_the_engine(store: _Store, key: str) -> None:
    image_id = store.image("base", {"l1": {}})
    path = store.store / "imagedb" / "content" / "sha256" / image_id[7:]
    config = json.loads(path.read_text())
    del config[key]
    path.write_text(json.dumps(config))
    files, fake = _files(store)
    with pytest.raises(ImageNotFoundError):
        files.image(image_id)
    assert fake.asked == [image_id]


def test_images_leaves_out_intermediate_images(store: _Store) -> None:
    base = store.image("base", {"l1": {}})
    store.tag("debian", "debian:trixie-slim", base)
    step = store.image("step", {"l1": {}, "l2": {}}, parent=base)
    final = store.image("final", {"l1": {}, "l2": {}, "l3": {}}, parent=step)
    dangling = store.image("dangling", {"l9": {}})
    files, fake = _files(store)
    assert sorted(i.id for i in files.images()) == sorted([base, final, dangling])
    assert fake.asked == []


def test_open_rootfs_reads_the_layers_top_first(store: _Store) -> None:
    image_id = store.image("img", {"l1": {"etc/a": "old\n", "etc/b": "b\n"},
                                   "l2": {"etc/a": "new\n"}})
    files, _ = _files(store)
    info = files.image(image_id)
    with files.open_rootfs(info) as fs:
        assert fs.read_bytes("etc/a") == b"new\n"
        assert fs.read_bytes("etc/b") == b"b\n"


# -- finding the data root -------------------------------------------------------


class _InfoEngine:
    def __init__(self, info: dict[str, Any]) -> None:
        self.client = self
        self._info = info

    def info(self) -> dict[str, Any]:
        return self._info


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen()
        yield path


def test_the_data_root_is_learnt_once_per_socket(store: _Store, listening: Path,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{listening}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    info = {"Driver": "overlay2", "DockerRootDir": str(store.root), "DriverStatus": []}
    connects: list[int] = []

    def connect(timeout: int | None = None) -> Any:
        connects.append(1)
        return _InfoEngine(info)

    monkeypatch.setattr(enginefiles, "connect", connect)
    first = local_images()
    assert isinstance(first, EngineFiles) and first.root == store.root
    assert len(connects) == 1
    second = local_images()
    assert isinstance(second, EngineFiles) and second.root == store.root
    assert len(connects) == 1  # cached for this socket file

    # The engine started again (a new socket file), now with the containerd store.
    listening.unlink()
    info["DriverStatus"] = [["driver-type", "io.containerd.snapshotter.v1"]]
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(listening))
        s.listen()
        third = local_images()
    assert isinstance(third, _InfoEngine)
    assert len(connects) == 2


@pytest.mark.skipif(not Path("/proc/net/unix").exists(), reason="no /proc/net/unix")
def test_procfs_tells_a_listening_socket_from_a_bound_one(listening: Path,
                                                          tmp_path: Path) -> None:
    link = tmp_path / "link.sock"
    link.symlink_to(listening)
    assert enginefiles._listed_as_listening(str(listening))
    assert enginefiles._listed_as_listening(str(link))  # the path as the user names it
    bound = tmp_path / "bound.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(bound))
        assert not enginefiles._listed_as_listening(str(bound))
    assert not enginefiles._listed_as_listening(str(tmp_path / "none.sock"))


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "ssh://me@host"])
def test_a_remote_engine_is_the_sdk_client(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    sentinel = _InfoEngine({})
    monkeypatch.setattr(enginefiles, "connect", lambda timeout=None: sentinel)
    assert local_images() is sentinel


def test_a_socket_nobody_listens_on_is_the_sdk_client(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening: a dead engine's socket
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    sentinel = _InfoEngine({})
    monkeypatch.setattr(enginefiles, "connect", lambda timeout=None: sentinel)
    assert local_images() is sentinel


# -- the real engine -------------------------------------------------------------


def _file_source(o2: StoreEngine, monkeypatch: pytest.MonkeyPatch) -> EngineFiles:
    monkeypatch.setenv("DOCKER_HOST", o2.host)
    source = local_images()
    if not isinstance(source, EngineFiles):
        pytest.fail("the test bed's overlay2 engine is local: its files must be readable")
    return source


# An image with more than its base and a pip-installed distribution, of this test session
# (a machine's own images, such as a benchmark's relock-sci:latest, are no test's input).
_APP = """FROM debian:trixie-slim
RUN mkdir -p /opt/venv/lib/python3.13/site-packages/demo-1.0.dist-info \\
 && printf 'home = /usr/bin\\nversion = 3.13.5\\n' > /opt/venv/pyvenv.cfg \\
 && printf 'Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n' \\
      > /opt/venv/lib/python3.13/site-packages/demo-1.0.dist-info/METADATA \\
 && echo pip > /opt/venv/lib/python3.13/site-packages/demo-1.0.dist-info/INSTALLER
RUN echo second layer > /srv/second
"""


def _build(o2: StoreEngine, context: Path, text: str, name: str) -> str:
    from relock.build.enginebuild import build

    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(text)
    tag = f"relock-test-{name}:{uuid.uuid4().hex[:8]}"
    build(o2.engine, context, "Dockerfile", tag=tag)
    return tag


# The files are the overlay2 image store's (image/overlay2, overlay2/): these tests read
# the test bed's engine of that store, whichever of its two engines it is.
@pytest.fixture(scope="module")
def app_image(overlay2_engine: StoreEngine,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tagged image of three layers with a venv holding one pip distribution."""
    tag = _build(overlay2_engine, tmp_path_factory.mktemp("app"), _APP, "files-app")
    yield tag
    with contextlib.suppress(Exception):
        overlay2_engine.client.images.remove(tag, force=True)


@pytest.fixture
def digest_only(overlay2_engine: StoreEngine, tmp_path: Path) -> Iterator[str]:
    """A built image (two layers) known only by its digest in the test bed's registry."""
    client = overlay2_engine.client
    tag = _build(overlay2_engine, tmp_path / "ctx", "FROM debian:trixie-slim\n"
                 f"RUN echo {uuid.uuid4().hex} > /made\n", "ef")
    repo = f"127.0.0.1:5000/relock-test-ef-{uuid.uuid4().hex[:8]}"
    client.images.get(tag).tag(repo, "t")
    client.images.push(repo, "t")
    digest = client.images.get_registry_data(f"{repo}:t").id
    client.images.remove(f"{repo}:t")
    client.images.remove(tag, force=True)
    ref = f"{repo}@{digest}"
    client.images.pull(ref)
    yield ref
    with contextlib.suppress(Exception):
        client.images.remove(ref, force=True)


@pytest.mark.engine
@pytest.mark.slow
def test_files_and_sdk_agree_on_real_images(overlay2_engine: StoreEngine, digest_only: str,
                                            app_image: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    docker_engine, client = overlay2_engine.engine, overlay2_engine.client
    files = _file_source(overlay2_engine, monkeypatch)
    by_sdk = {i.id: i for i in docker_engine.images()}
    by_files = {i.id: i for i in files.images()}
    assert by_files == by_sdk
    built = files.image(digest_only)
    assert not client.images.get(built.id).tags and built.repo_digests == (digest_only,)
    assert len(built.layers) == 2
    refs = ["debian:trixie-slim", app_image, digest_only, built.id, built.short_id,
            built.id[7:19]]
    for ref in refs:
        assert files.image(ref) == docker_engine.image(ref), ref
        image = files.image(ref)
        assert files._layer_dirs(image) == _overlay_layers(docker_engine._attrs[image.id])
        with files.open_rootfs(files.image(ref)) as a, \
                docker_engine.open_rootfs(docker_engine.image(ref)) as b:
            assert a.read_bytes("var/lib/dpkg/status") == b.read_bytes("var/lib/dpkg/status")
            made = a.read_bytes("made")
            assert made == b.read_bytes("made")
            assert (made is not None) == (ref not in refs[:2])
    for ref in ("relock-no-such-image:x", "sha256:" + "0" * 64):
        with pytest.raises(ImageNotFoundError) as by_files_err:
            files.image(ref)
        with pytest.raises(ImageNotFoundError) as by_sdk_err:
            docker_engine.image(ref)
        assert str(by_files_err.value) == str(by_sdk_err.value)
    assert sdk_engine(files) is files.engine()


@pytest.mark.engine
@pytest.mark.parametrize("image", ["debian:trixie-slim", "app"])
def test_a_freeze_through_the_files_is_the_freeze_through_the_sdk(
        overlay2_engine: StoreEngine, image: str, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from relock.freeze import freeze as fz
    from relock.lock.lockfile import dumps
    from relock.template import dockerfile as df

    if image == "app":
        image = request.getfixturevalue("app_image")
    files = _file_source(overlay2_engine, monkeypatch)
    docker_engine = overlay2_engine.engine
    parsed = df.load(ROOT / "Dockerfile.in", {})
    options = fz.FreezeOptions(index=None, deb_entries=True, archive=None)
    by_files = fz.freeze_image(files, image, parsed, options)
    by_sdk = fz.freeze_image(docker_engine, image, parsed, options)
    assert dumps(by_files.lock) == dumps(by_sdk.lock)
    assert by_files.warnings == by_sdk.warnings
    assert by_files.lock.apt
    if image != "debian:trixie-slim":  # the app's venv and its distribution are read
        assert [(q.env, q.name, q.version) for q in by_files.lock.pip] == [
            ("/opt/venv", "demo", "1.0")]


@pytest.mark.engine
def test_freeze_on_the_files_imports_no_engine_client(overlay2_engine: StoreEngine,
                                                      tmp_path: Path, app_image: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Nor what a freeze of files does not use: the other commands, sockets, temp files,
    a TOML parser, python-debian (freeze_bench's figure rests on it)."""
    _file_source(overlay2_engine, monkeypatch)  # fills the cache of the data root
    unused = ("docker", "requests", "urllib3", "socket", "tempfile", "tomli", "debian",
              "relock.cli.build", "relock.template.render", "relock.image.registrysource",
              "relock.upstream.registry")
    code = ("import sys; sys.argv = ['relock', *sys.argv[1:]]\n"
            "from relock.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(sorted(m for m in {unused!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run(
        [sys.executable, "-c", code, "freeze", app_image, "--no-index",
         "--no-archive", "-f", str(ROOT / "Dockerfile.in"), "-o", str(tmp_path / "x.lock")],
        capture_output=True, text=True, check=True,
        env={**os.environ, "DOCKER_HOST": overlay2_engine.host})
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "x.lock").is_file()


@pytest.mark.engine
@pytest.mark.slow
def test_a_second_engine_is_read_from_its_own_data_root(second_host: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       app_image: str) -> None:
    second_host.load("debian:trixie-slim")
    monkeypatch.setenv("DOCKER_HOST", second_host.docker_host)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = local_images()
    assert isinstance(source, EngineFiles)
    sdk = source.engine()
    assert str(source.root) == sdk.client.info()["DockerRootDir"] != "/var/lib/docker"
    assert {i.id: i for i in source.images()} == {i.id: i for i in sdk.images()}
    assert source.image("debian:trixie-slim") == sdk.image("debian:trixie-slim")
    with pytest.raises(ImageNotFoundError):
        source.image(app_image)  # in the first engine only


@pytest.mark.parametrize(("ref", "familiar"), [
    ("debian:trixie-slim", "debian"),
    ("docker.io/library/debian@sha256:" + "a" * 64, "debian"),
    ("index.docker.io/me/app:1", "me/app"),
    ("127.0.0.1:5000/team/sci:1", "127.0.0.1:5000/team/sci"),
    ("localhost/app", "localhost/app"),
])
def test_names_are_looked_up_as_the_engine_keys_its_tags(ref: str, familiar: str) -> None:
    from relock.lock.reference import parse

    assert parse(ref).familiar == familiar
