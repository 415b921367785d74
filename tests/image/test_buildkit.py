"""relock's BuildKit builder (docker buildx) without an engine: a stand-in `docker`
command that writes what buildx 0.13 writes with --progress=rawjson."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from relock.errors import EngineError, UsageError
from relock.image import buildkit
from relock.image.engine import BuildEvent, BuildRequest, ImageInfo
from tests.fakes import FakeEngine


def status(**kw: object) -> str:
    """One solve status as buildx prints it: indented JSON over several lines."""
    return json.dumps(kw, indent=2)


def log_entry(vertex: str, data: bytes) -> dict[str, object]:
    return {"vertex": vertex, "stream": 1, "data": base64.b64encode(data).decode()}


RUN = "[stage-0 2/3] RUN mkdir -p /dev/shm/relock/parts && export RELOCK_VIEW=ab || exit 1; " \
      "pip install six"


def fake_docker(tmp_path: Path, statuses: list[str], *, code: int = 0,
                image: str = "sha256:" + "1" * 64) -> Path:
    """A `docker` that records its arguments and stdin, prints ``statuses`` and exits ``code``."""
    out = tmp_path / "status.txt"
    out.write_text("\n".join(statuses) + "\n")
    script = tmp_path / "docker"
    script.write_text(f"""#!/bin/sh
if [ "$1" = buildx ] && [ "$2" = version ]; then
  echo "github.com/docker/buildx 0.13.1 x"; exit 0
fi
if [ "$1" = buildx ] && [ "$2" = ls ]; then echo default; echo remote; exit 0; fi
printf '%s\\n' "$@" > {tmp_path}/argv
cat > {tmp_path}/stdin
iid=""; meta=""; prev=""
for a in "$@"; do
  [ "$prev" = --iidfile ] && iid=$a
  [ "$prev" = --metadata-file ] && meta=$a
  prev=$a
done
cat {out}
[ {code} = 0 ] && printf '%s' {image} > "$iid" &&
  echo '{{"containerimage.digest": "{image}"}}' > "$meta"
exit {code}
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_a_build_turns_buildkit_status_into_relock_events(tmp_path: Path) -> None:
    vertex = "sha256:" + "a" * 64
    statuses = [
        status(vertexes=[{"digest": vertex, "name": RUN, "started": "2026-12-02T10:00:00Z"}]),
        # A log line cut in two chunks, then the rest.
        status(logs=[log_entry(vertex, b"Collecting si")]),
        status(logs=[log_entry(vertex, b"x==1.16.0\nInstalled\n")]),
        status(vertexes=[{"digest": vertex, "name": RUN, "started": "2026-12-02T10:00:00Z",
                          "completed": "2026-12-02T10:00:01Z"}]),
    ]
    docker = fake_docker(tmp_path, statuses)
    builder = buildkit.Buildx(docker=str(docker))
    events = list(builder.build(BuildRequest(dockerfile="Dockerfile", context=tmp_path,
                                             dockerfile_text="FROM scratch\n", tag="t:1",
                                             build_args={"A": "1"}, target="app",
                                             nocache=True, platform="linux/arm64")))
    assert [(e.kind, e.text) for e in events] == [
        ("log", f"#1 {RUN}"),
        ("log", "Collecting six==1.16.0"),
        ("log", "Installed"),
        ("image", "sha256:" + "1" * 64),
    ]
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:3] == ["buildx", "build", "--progress=rawjson"]
    for flag in (["--network", "host"], ["--build-arg", "A=1"], ["--target", "app"],
                 ["--platform", "linux/arm64"], ["-t", "t:1"]):
        i = argv.index(flag[0])
        assert argv[i:i + 2] == flag
    assert "--no-cache" in argv and "--load" in argv and argv[-1] == str(tmp_path)
    assert "--provenance=false" in argv
    # The Dockerfile was outside the context, and is gone with the build.
    dockerfile = Path(argv[argv.index("-f") + 1])
    assert tmp_path not in dockerfile.parents and not dockerfile.exists()
    assert builder.metadata == {"containerimage.digest": "sha256:" + "1" * 64}


def test_a_failed_step_is_one_line_naming_it(tmp_path: Path) -> None:
    vertex = "sha256:" + "b" * 64
    statuses = [status(vertexes=[{
        "digest": vertex, "name": RUN, "started": "2026-12-02T10:00:00Z",
        "error": "process \"/bin/sh -c pip install six\" did not complete successfully: "
                 "exit code: 1"}]),
        "ERROR: failed to solve: process did not complete successfully"]
    docker = fake_docker(tmp_path, statuses, code=1)
    events = list(buildkit.Buildx(docker=str(docker)).build(
        BuildRequest(dockerfile="Dockerfile", context=tmp_path)))
    assert events[-1].kind == "error"
    assert events[-1].text.startswith("[stage-0 2/3] RUN ")
    assert events[-1].text == f"{RUN}: did not complete successfully: exit code: 1"
    assert "/bin/sh -c" not in events[-1].text  # the step, not the process relock made of it
    assert not any(e.kind == "image" for e in events)


def test_buildx_refusing_before_any_step_says_its_words(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, ["ERROR: no builder \"gone\" found"], code=1)
    events = list(buildkit.Buildx(docker=str(docker)).build(
        BuildRequest(dockerfile="Dockerfile", context=tmp_path)))
    assert events[-1] == buildkit.BuildEvent(
        "error", 'docker buildx build exited 1: ERROR: no builder "gone" found')


def test_a_context_tar_goes_to_stdin(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, [])
    tar = io.BytesIO(b"tar bytes" * 1000)
    list(buildkit.Buildx(docker=str(docker)).build(
        BuildRequest(dockerfile=".relock.Dockerfile", context_tar=tar)))
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[-1] == "-" and (tmp_path / "stdin").read_bytes() == b"tar bytes" * 1000


def test_push_and_named_builders(tmp_path: Path) -> None:
    builder = buildkit.Buildx(builder="remote", push=True)
    argv = builder.command(BuildRequest(dockerfile="D", network_mode=""), "D", ".",
                           Path("i"), Path("m"))
    assert argv[argv.index("--builder") + 1] == "remote"
    assert "--push" in argv and "--load" not in argv and "--network" not in argv


def test_status_that_is_not_json_or_endless_is_bounded() -> None:
    stream = io.BytesIO(b"{\n" + b'"x": "' + b"y" * (buildkit.MAX_STATUS + 10))
    with pytest.raises(buildkit.EngineError, match="more than 8 MiB"):
        list(buildkit._objects(stream))


def test_select_the_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeEngine()
    monkeypatch.delenv("RELOCK_BUILDER", raising=False)
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert buildkit.select(engine).name == "the classic builder (no docker buildx here)"
    with pytest.raises(UsageError, match="docker buildx is not installed"):
        buildkit.select(engine, "buildkit")
    fake_docker(tmp_path, [])
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    chosen = buildkit.select(engine)
    assert chosen.name == "BuildKit (the engine's own, buildx 0.13.1)"
    assert isinstance(chosen.builder, buildkit.Buildx) and chosen.builder.builder is None
    assert buildkit.select(engine, "classic").builder is engine
    remote = buildkit.select(engine, "remote")
    assert isinstance(remote.builder, buildkit.Buildx) and remote.builder.builder == "remote"
    with pytest.raises(UsageError, match="no buildx builder of that name"):
        buildkit.select(engine, "nosuch")
    with pytest.raises(UsageError, match="--builder is empty"):
        buildkit.select(engine, " ")
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    assert buildkit.select(engine).builder is engine
    monkeypatch.setenv("RELOCK_BUILDER", "remote")
    assert buildkit.select(engine).name.startswith("BuildKit (buildx builder remote")


def oci_archive(path: Path, config: bytes = b'{"architecture": "amd64"}') -> tuple[str, str]:
    """An OCI archive as BuildKit writes one: index.json, its manifest and config blobs."""
    import hashlib
    import tarfile

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    manifest = json.dumps({"schemaVersion": 2, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config),
        "size": len(config)}, "layers": []}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
        "size": len(manifest)}]}).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((f"blobs/sha256/{digest(config)[7:]}", config),
                           (f"blobs/sha256/{digest(manifest)[7:]}", manifest),
                           ("index.json", index)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return digest(config), digest(manifest)


def test_a_reproducible_build_writes_an_oci_archive_and_loads_it(tmp_path: Path) -> None:
    archive = tmp_path / "made.tar"
    config, manifest = oci_archive(archive)
    docker = fake_docker(tmp_path, [])
    # The fake writes the prepared archive where --output says, and takes `docker load`.
    text = docker.read_text().replace(
        'printf \'%s\\n\' "$@" > ', 'if [ "$1" = load ]; then printf \'%s\\n\' "$@" > '
        f'{tmp_path}/loaded; exit 0; fi\nprintf \'%s\\n\' "$@" > ').replace(
        f"cat {tmp_path / 'status.txt'}",
        f'for a in "$@"; do case $a in type=oci,dest=*) d=${{a#type=oci,dest=}}; '
        f'cp {archive} "${{d%%,*}}";; esac; done\ncat {tmp_path / "status.txt"}')
    docker.write_text(text)
    events = list(buildkit.Buildx(docker=str(docker)).build(BuildRequest(
        dockerfile="Dockerfile", context=tmp_path, tag="t:1", source_date_epoch=1700000000)))
    assert ("digest", f"{config} {manifest}") in [(e.kind, e.text) for e in events]
    assert events[-1] == BuildEvent("image", config)
    argv = (tmp_path / "argv").read_text().splitlines()
    assert "--load" not in argv
    i = argv.index("SOURCE_DATE_EPOCH=1700000000")
    assert argv[i - 1] == "--build-arg"
    output = argv[argv.index("--output") + 1]
    assert output.startswith("type=oci,dest=") and output.endswith(
        ",name=t:1,rewrite-timestamp=true")
    loaded = (tmp_path / "loaded").read_text().splitlines()
    assert loaded[:3] == ["load", "-q", "-i"] and loaded[3].endswith("image.oci.tar")


def test_an_oci_archive_that_names_no_one_image_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(EngineError, match=r"cannot read the OCI archive|no readable index\.json"):
        buildkit.oci_digests(bad)
    good = tmp_path / "good.tar"
    config, manifest = oci_archive(good)
    assert buildkit.oci_digests(good) == (config, manifest)


def test_only_buildkit_on_the_containerd_store_or_a_named_builder_builds_reproducibly() -> None:
    engine = FakeEngine()
    classic = buildkit.WithBuilder(engine, engine, "the classic builder")
    assert "cannot build reproducibly" in (classic.reproducible_problem() or "")
    own = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    assert "overlay2 store" in (own.reproducible_problem() or "")
    engine.containerd = True
    assert own.reproducible_problem() is None
    engine.containerd = False
    named = buildkit.WithBuilder(engine, buildkit.Buildx(builder="remote"), "BuildKit")
    assert named.reproducible_problem() is None


def test_the_classic_builder_refuses_a_reproducible_build() -> None:
    from relock.image.engine import DockerEngine

    events = list(DockerEngine(None).build(BuildRequest(dockerfile="Dockerfile",
                                                         source_date_epoch=0)))
    assert [e.kind for e in events] == ["refused"] and "BuildKit" in events[0].text


def test_several_platforms_pushed_in_one_build_name_the_index(tmp_path: Path) -> None:
    index, config = "sha256:" + "2" * 64, "sha256:" + "1" * 64
    docker = fake_docker(tmp_path, [], image=config)
    # buildx's metadata of a pushed index: its digest, which the registry names it by.
    docker.write_text(docker.read_text().replace(
        f'"containerimage.digest": "{config}"', f'"containerimage.digest": "{index}"'))
    engine = FakeEngine()
    engine.containerd = True
    builds = buildkit.WithBuilder(engine, buildkit.Buildx(docker=str(docker)), "BuildKit")
    events = list(builds.pushing().build(BuildRequest(
        dockerfile="Dockerfile", context=tmp_path, tag="127.0.0.1:5000/app:1",
        platform="linux/amd64,linux/arm64")))
    assert events == [BuildEvent("image", index)]
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[argv.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert "--push" in argv and "--load" not in argv
    assert argv[argv.index("-t") + 1] == "127.0.0.1:5000/app:1"
    # The builder pushing is a copy: the one it came from still loads.
    assert isinstance(builds.builder, buildkit.Buildx) and builds.builder.loads


def test_several_platforms_loaded_go_to_the_engine_by_their_tag(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, [])
    engine = FakeEngine()
    engine.containerd = True
    index = ImageInfo("sha256:" + "3" * 64)
    engine.add(index, "app:multi")
    builds = buildkit.WithBuilder(engine, buildkit.Buildx(docker=str(docker)), "BuildKit")
    events = list(builds.build(BuildRequest(dockerfile="Dockerfile", context=tmp_path,
                                            tag="app:multi",
                                            platform="linux/amd64,linux/arm64")))
    assert events == [BuildEvent("image", index.id)]  # the engine's ID: the index's digest
    argv = (tmp_path / "argv").read_text().splitlines()
    assert "--load" in argv and "--push" not in argv


def test_which_builder_builds_several_platforms_where() -> None:
    engine = FakeEngine()  # the overlay2 store
    classic = buildkit.WithBuilder(engine, engine, "the classic builder")
    assert classic.platforms_problem(1, False) is None
    for count, push in ((2, False), (2, True), (1, True)):
        assert "one platform's image at a time" in (classic.platforms_problem(count, push)
                                                     or ""), (count, push)
    with pytest.raises(UsageError, match="cannot push"):
        classic.pushing()
    own = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    assert own.platforms_problem(1, True) is None  # one platform's image pushes from overlay2
    for push in (False, True):
        assert "docker driver) cannot build several platforms" in (
            own.platforms_problem(2, push) or "")
    named = buildkit.WithBuilder(engine, buildkit.Buildx(builder="remote"), "BuildKit")
    assert named.platforms_problem(2, True) is None
    assert "loaded only into an engine with the containerd image store" in (
        named.platforms_problem(2, False) or "")
    engine.containerd = True
    assert own.platforms_problem(2, False) is None and own.platforms_problem(2, True) is None
    assert named.platforms_problem(2, False) is None


def test_a_reproducible_build_of_several_platforms_loads_its_oci_index(tmp_path: Path) -> None:
    archive = tmp_path / "made.tar"
    archive.write_bytes(b"an OCI archive of an index")
    docker = fake_docker(tmp_path, [], image="sha256:" + "4" * 64)
    text = docker.read_text().replace(
        'printf \'%s\\n\' "$@" > ', 'if [ "$1" = load ]; then printf \'%s\\n\' "$@" > '
        f'{tmp_path}/loaded; cp "$4" {tmp_path}/got; exit 0; fi\nprintf \'%s\\n\' "$@" > '
    ).replace(
        f"cat {tmp_path / 'status.txt'}",
        f'for a in "$@"; do case $a in type=oci,dest=*) d=${{a#type=oci,dest=}}; '
        f'cp {archive} "${{d%%,*}}";; esac; done\ncat {tmp_path / "status.txt"}')
    docker.write_text(text)
    engine = FakeEngine()
    engine.containerd = True
    engine.add(ImageInfo("sha256:" + "5" * 64), "t:multi")
    builds = buildkit.WithBuilder(engine, buildkit.Buildx(docker=str(docker)), "BuildKit")
    events = list(builds.build(BuildRequest(
        dockerfile="Dockerfile", context=tmp_path, tag="t:multi",
        platform="linux/amd64,linux/arm64", source_date_epoch=1700000000)))
    # The context copied with its times made the same; no digest of one image: each
    # platform's is read from the engine after.
    assert [e.kind for e in events] == ["log", "log", "image"]
    assert events[0].text.startswith("the build context: ")
    assert events[-1] == BuildEvent("image", "sha256:" + "5" * 64)
    argv = (tmp_path / "argv").read_text().splitlines()
    output = argv[argv.index("--output") + 1]
    assert output.startswith("type=oci,dest=") and output.endswith(
        ",name=t:multi,rewrite-timestamp=true")
    assert argv[argv.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert (tmp_path / "got").read_bytes() == archive.read_bytes()  # the archive loaded


def test_a_reproducible_push_writes_an_oci_archive_relock_pushes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = fake_docker(tmp_path, [])
    text = docker.read_text().replace(
        f"cat {tmp_path / 'status.txt'}",
        'for a in "$@"; do case $a in type=oci,dest=*) d=${a#type=oci,dest=}; '
        f'echo archive > "${{d%%,*}}";; esac; done\ncat {tmp_path / "status.txt"}')
    docker.write_text(text)
    pushed: list[tuple[bytes, str]] = []

    def push_archive(archive: Path, name: str) -> str:
        pushed.append((archive.read_bytes(), name))
        return "sha256:" + "6" * 64

    monkeypatch.setattr(buildkit, "push_archive", push_archive)
    events = list(buildkit.Buildx(docker=str(docker), push=True).build(BuildRequest(
        dockerfile="Dockerfile", context=tmp_path, tag="127.0.0.1:5000/app:1",
        platform="linux/amd64,linux/arm64", source_date_epoch=1700000000)))
    assert events[-1] == BuildEvent("image", "sha256:" + "6" * 64)
    assert pushed == [(b"archive\n", "127.0.0.1:5000/app:1")]
    argv = (tmp_path / "argv").read_text().splitlines()
    # Not the engine's pushing exporter, which unpacks and cannot rewrite timestamps.
    assert "--push" not in argv and "--load" not in argv
    output = argv[argv.index("--output") + 1]
    assert output.startswith("type=oci,dest=") and output.endswith(
        ",name=127.0.0.1:5000/app:1,rewrite-timestamp=true")
