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

from relock.errors import UsageError
from relock.image import buildkit
from relock.image.engine import BuildRequest
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
