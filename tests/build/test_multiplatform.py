"""relock build of several platforms in one build (issue 21, item 3) without an engine:
which platforms, which output, the refusals before any step, and the verify of each
platform of an image index (docker save's, or a registry's).

The evidence on a real engine, registry and qemu is tests/e2e/test_platforms_e2e.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.build import command
from relock.build.command import BuildRequest, build_platforms, platforms_part, push_target
from relock.errors import PlatformMissingError, UsageError
from relock.freeze.freeze import FreezeOptions, freeze_index
from relock.image import buildkit
from relock.image.engine import ImageInfo
from relock.image.registrysource import RegistryReader, RegistrySource
from relock.lock import lockfile
from relock.lock.lockfile import Lock
from relock.template.dockerfile import parse
from tests.fakes import FakeEngine, FakeRegistry, oci_layout
from tests.image.test_registrysource import two_platforms

TEMPLATE = "FROM 127.0.0.1:5999/library/debian:trixie-slim\nRUN true\n"
BOTH = ["linux/amd64", "linux/arm64"]


def frozen(tmp_path: Path) -> tuple[FakeRegistry, Lock]:
    """The registry's two-platform ``team/app:1`` and the lock of both its platforms."""
    r = FakeRegistry()
    two_platforms(r)
    src = RegistrySource(registry_for=lambda host: r)
    return r, freeze_index(src, f"oci://{r.host}/team/app:1", parse(TEMPLATE),
                           FreezeOptions()).lock


def test_the_platforms_a_build_names(tmp_path: Path) -> None:
    _, lock = frozen(tmp_path)
    assert build_platforms("all", lock) == BOTH
    assert build_platforms("linux/arm64/v8,linux/amd64,linux/arm64", lock) == [
        "linux/arm64", "linux/amd64"]  # spelled one way, once, in the order given
    assert build_platforms(None, lock) == ["linux/amd64"]  # the host's (amd64 here)
    one = lock.for_platform("linux/arm64")
    assert build_platforms(None, one) == ["linux/arm64"]  # a lock of one: its own
    with pytest.raises(PlatformMissingError, match="the lock has no linux/riscv64 part") as e:
        build_platforms("linux/amd64,linux/riscv64", lock)
    assert e.value.exit_code == 2
    with pytest.raises(UsageError, match="'all' names every platform of the lock and goes"):
        build_platforms("all,linux/amd64", lock)


def test_the_part_a_build_of_platforms_takes(tmp_path: Path) -> None:
    _, lock = frozen(tmp_path)
    assert platforms_part(lock, BOTH) is lock
    arm64 = platforms_part(lock, ["linux/arm64"])
    assert (arm64.platform, arm64.multi) == ("linux/arm64", False)
    # One platform's part: its base pinned by the platform's own manifest.
    base = lock.for_platform("linux/arm64").base[0]
    assert arm64.base[0].digest == base.manifest
    three = lock.with_part(dataclasses.replace(lock.for_platform("linux/arm64"),
                                               platform="linux/arm/v7"))
    two = platforms_part(three, ["linux/arm/v7", "linux/amd64"])
    assert two.platforms == ("linux/amd64", "linux/arm/v7")
    assert two.for_platform("linux/amd64") == lock.for_platform("linux/amd64")


@pytest.mark.parametrize(("tag", "message"), [
    (None, "--push needs -t HOST"),
    ("app:1", "does not name a registry"),
    ("team/app:1", "does not name a registry"),
    (f"127.0.0.1:5000/app@sha256:{'a' * 64}", "does not name a registry"),
    ("127.0.0.1:5000/App:1", "is not a valid repository name"),
])
def test_push_needs_a_tag_that_names_its_registry(tag: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        push_target(tag)


def test_push_goes_to_the_registry_the_tag_names() -> None:
    assert push_target("127.0.0.1:5000/team/app:1") == "127.0.0.1:5000/team/app"
    assert push_target("localhost:5000/app") == "localhost:5000/app"
    assert push_target("reg.example/team/app:2") == "reg.example/team/app"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, FakeEngine]:
    """A template and its two-platform lock on disk, and the fake engine ``connect`` gives
    (the overlay2 store until a test says otherwise)."""
    _, lock = frozen(tmp_path)
    template = tmp_path / "Dockerfile.in"
    template.write_text(TEMPLATE)
    path = tmp_path / "app.lock"
    lockfile.write(lock, path)
    engine = FakeEngine()
    monkeypatch.setattr("relock.image.engine.connect", lambda *a, **k: engine)
    return template, path, engine


def refused(template: Path, lock: Path, builder: object, **kw: object) -> str:
    """The one line ``run_build`` refuses with (the builder ``select`` gives is ``builder``)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(buildkit, "select", lambda engine, choice=None: builder)
        with pytest.raises(UsageError) as e:
            command.run_build(BuildRequest(dockerfile=template, lock_path=lock, **kw))  # type: ignore[arg-type]
    return str(e.value)


def test_several_platforms_need_a_builder_and_a_store_that_hold_them(
        project: tuple[Path, Path, FakeEngine]) -> None:
    template, lock, engine = project
    classic = buildkit.WithBuilder(engine, engine, "the classic builder")
    said = refused(template, lock, classic, platform="linux/amd64,linux/arm64")
    assert said.startswith("--platform linux/amd64,linux/arm64: the classic builder builds "
                           "one platform's image at a time")
    assert "--push: the classic builder" in refused(template, lock, classic, push=True,
                                                    tag="127.0.0.1:5000/app:1")
    own = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    assert "turn on the containerd image store" in refused(template, lock, own, platform="all")
    named = buildkit.WithBuilder(engine, buildkit.Buildx(builder="remote"), "BuildKit")
    assert "or --push the image to a registry" in refused(template, lock, named,
                                                          platform="all")
    assert engine.requests == []  # nothing was built


def test_push_refusals_come_before_the_engine(
        project: tuple[Path, Path, FakeEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    template, lock, _ = project

    def no_engine(*_: object, **__: object) -> object:
        raise AssertionError("the engine was asked")

    monkeypatch.setattr("relock.image.engine.connect", no_engine)
    assert "does not name a registry" in refused(template, lock, None, platform="all",
                                                 push=True, tag="app:1")
    with pytest.raises(PlatformMissingError, match="no linux/s390x part"):
        command.run_build(BuildRequest(dockerfile=template, lock_path=lock,
                                       platform="linux/amd64,linux/s390x", push=True,
                                       tag="127.0.0.1:5000/app:1"))


def test_a_reproducible_push_needs_a_builder_that_can(
        project: tuple[Path, Path, FakeEngine]) -> None:
    template, lock, engine = project  # the overlay2 store
    own = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    said = refused(template, lock, own, platform="linux/arm64", push=True,
                   tag="127.0.0.1:5000/app:1", reproducible=True)
    assert said.startswith("--reproducible: the engine keeps its images in the overlay2 store")
    assert engine.requests == []


def saved_engine(r: FakeRegistry, tag: str, **kw: object) -> FakeEngine:
    """An engine of the containerd store holding ``team/app:1`` as ``tag`` (its docker save)."""
    engine = FakeEngine()
    engine.containerd = True
    engine.add(ImageInfo(r.manifests[("team/app", "1")].digest), tag)
    engine.saved[tag] = oci_layout(r, "team/app", "1", **kw)  # type: ignore[arg-type]
    return engine


def bases(r: FakeRegistry) -> object:
    def registry_for(host: str) -> RegistryReader:
        assert host == r.host, host
        return r
    return registry_for


def test_each_platform_the_engine_saved_is_verified_against_its_part(tmp_path: Path) -> None:
    r, lock = frozen(tmp_path)
    engine = saved_engine(r, "app:multi")
    said: list[str] = []
    assert command.verify_saved(engine, "app:multi", lock, said.append, platforms=BOTH,
                                registry_for=bases(r)) == ()  # type: ignore[arg-type]
    assert "verifying the linux/amd64 image" in said and "verifying the linux/arm64 image" \
        in said
    # The arm64 part locks another hello: that platform drifts, and says so.
    apt = tuple(dataclasses.replace(p, version="2.10-6") if p.name == "hello"
                and p.platform == "linux/arm64" else p for p in lock.apt)
    drift = command.verify_saved(engine, "app:multi", dataclasses.replace(lock, apt=apt),
                                 registry_for=bases(r))  # type: ignore[arg-type]
    assert drift is not None
    assert [d.describe() for d in drift] == [
        "apt hello:arm64 [linux/arm64]: locked 2.10-6, image has 2.10-5+b1"]


def test_a_platform_the_build_asked_for_and_the_engine_lacks_drifts(tmp_path: Path) -> None:
    r, lock = frozen(tmp_path)
    arm64 = r.manifests[("team/app", "app-arm64")].digest
    engine = saved_engine(r, "app:multi", leave_out=[arm64])
    drift = command.verify_saved(engine, "app:multi", lock, platforms=BOTH,
                                 registry_for=bases(r))  # type: ignore[arg-type]
    assert drift is not None
    assert [d.describe() for d in drift] == [
        "platform image: locked linux/arm64, not in the image"]
    # Asked for nothing more than the one it holds: verify reads that one as ever.
    assert command.verify_saved(engine, "app:multi", lock, registry_for=bases(r)  # type: ignore[arg-type]
                                ) is None


def test_relock_verify_of_an_engine_index_reads_each_platform(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, lock = frozen(tmp_path)
    path = tmp_path / "app.lock"
    lockfile.write(lock, path)
    engine = saved_engine(r, "app:multi")
    monkeypatch.setattr("relock.upstream.registry.registry_for", bases(r))
    said: list[str] = []
    outcome = command.run_verify(command.VerifyRequest("app:multi", path), said.append,
                                 connect=lambda: engine)
    assert outcome.drift == ()
    assert [s for s in said if s.startswith("verifying the ")] == [
        "verifying the linux/amd64 image", "verifying the linux/arm64 image"]


def test_the_command_line_takes_a_list_all_and_push(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from relock.cli import cli

    seen: list[BuildRequest] = []

    def run_build(request: BuildRequest, *_: object, **__: object) -> command.VerifyOutcome:
        seen.append(request)
        return command.VerifyOutcome("x", tmp_path / "a.lock", ())

    monkeypatch.setattr(command, "run_build", run_build)
    r = CliRunner().invoke(cli, ["build", "--platform", "linux/amd64,linux/arm64/v8", "--push",
                                 "-t", "127.0.0.1:5000/app:1", "-q"])
    assert r.exit_code == 0, r.output
    assert (seen[-1].platform, seen[-1].push) == ("linux/amd64,linux/arm64", True)
    r = CliRunner().invoke(cli, ["build", "--platform", "all"])
    assert r.exit_code == 0 and seen[-1].platform == "all" and not seen[-1].push
    r = CliRunner().invoke(cli, ["build", "--platform", "linux/amd64,bogus"])
    assert r.exit_code == 2 and "'bogus' is not a platform" in r.stderr


class Rebuilt(Exception):
    """What the stand-in rebuild raises when a test needs nothing after it."""


def stub_rebuild(monkeypatch: pytest.MonkeyPatch, image_id: str, seen: list[dict[str, object]],
                 stop: bool = False) -> None:
    """``rebuild.rebuild`` replaced: it records what it was handed and names ``image_id``."""
    from relock.build import rebuild

    def rebuilt(builds: object, df: object, lock: Lock, ctx: Path, options: object,
                args: object, **kw: object) -> rebuild.RebuildResult:
        seen.append({"builds": builds, "lock": lock, "options": options})
        if stop:
            raise Rebuilt
        return rebuild.RebuildResult(image_id=image_id, rendered="")

    monkeypatch.setattr(rebuild, "rebuild", rebuilt)


def test_a_loaded_build_of_every_platform_is_verified_per_platform(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, lock = frozen(tmp_path)
    template, path = tmp_path / "Dockerfile.in", tmp_path / "app.lock"
    template.write_text(TEMPLATE)
    lockfile.write(lock, path)
    engine = saved_engine(r, "app:multi")
    builds = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    monkeypatch.setattr("relock.image.engine.connect", lambda *a, **k: engine)
    monkeypatch.setattr(buildkit, "select", lambda e, choice=None: builds)
    monkeypatch.setattr("relock.upstream.registry.registry_for", bases(r))
    seen: list[dict[str, object]] = []
    stub_rebuild(monkeypatch, r.manifests[("team/app", "1")].digest, seen)
    said: list[str] = []
    outcome = command.run_build(BuildRequest(dockerfile=template, lock_path=path,
                                             platform="all", tag="app:multi"), said.append)
    assert (outcome.image, outcome.drift) == ("app:multi", ())
    [call] = seen
    assert call["lock"] == lockfile.read(path)  # the whole lock: one render for both
    assert call["builds"] is builds and builds.builder.loads  # type: ignore[attr-defined]
    assert call["options"].platform == "linux/amd64,linux/arm64"  # type: ignore[attr-defined]
    assert said[0] == ("building linux/amd64, linux/arm64 in one build with BuildKit, loaded "
                       "into the engine")
    assert "verifying the linux/arm64 image" in said


def test_a_pushed_build_is_verified_per_platform_in_its_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, lock = frozen(tmp_path)
    template, path = tmp_path / "Dockerfile.in", tmp_path / "app.lock"
    template.write_text(TEMPLATE)
    lockfile.write(lock, path)
    engine = FakeEngine()
    engine.containerd = True
    builds = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    monkeypatch.setattr("relock.image.engine.connect", lambda *a, **k: engine)
    monkeypatch.setattr(buildkit, "select", lambda e, choice=None: builds)
    monkeypatch.setattr("relock.upstream.registry.registry_for", bases(r))
    seen: list[dict[str, object]] = []
    index = r.manifests[("team/app", "1")].digest
    stub_rebuild(monkeypatch, index, seen)
    said: list[str] = []
    outcome = command.run_build(BuildRequest(
        dockerfile=template, lock_path=path, platform="linux/arm64,linux/amd64", push=True,
        tag=f"{r.host}/team/app:pinned"), said.append)
    assert (outcome.image, outcome.drift) == (f"oci://{r.host}/team/app@{index}", ())
    pushed = seen[0]["builds"]
    assert isinstance(pushed, buildkit.WithBuilder) and isinstance(
        pushed.builder, buildkit.Buildx) and pushed.builder.push
    assert said[0].endswith(f"pushed to {r.host}/team/app")
    # The same index, pushed for a lock whose arm64 part differs: that platform drifts.
    apt = tuple(dataclasses.replace(p, version="2.10-6") if p.name == "hello"
                and p.platform == "linux/arm64" else p for p in lock.apt)
    lockfile.write(dataclasses.replace(lock, apt=apt), path)
    outcome = command.run_build(BuildRequest(
        dockerfile=template, lock_path=path, platform="all", push=True,
        tag=f"{r.host}/team/app:pinned"))
    assert [d.describe() for d in outcome.drift or ()] == [
        "apt hello:arm64 [linux/arm64]: locked 2.10-6, image has 2.10-5+b1"]


def test_all_of_a_lock_of_one_platform_is_that_platform_s_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lock = frozen(tmp_path)
    template, path = tmp_path / "Dockerfile.in", tmp_path / "arm64.lock"
    template.write_text(TEMPLATE)
    lockfile.write(lock.for_platform("linux/arm64"), path)
    engine = FakeEngine()
    monkeypatch.setattr("relock.image.engine.connect", lambda *a, **k: engine)
    monkeypatch.setattr(buildkit, "select", lambda e, choice=None: buildkit.WithBuilder(
        engine, engine, "the classic builder"))
    seen: list[dict[str, object]] = []
    stub_rebuild(monkeypatch, "", seen, stop=True)
    with pytest.raises(Rebuilt):
        command.run_build(BuildRequest(dockerfile=template, lock_path=path, platform="all"))
    assert seen[0]["options"].platform == "linux/arm64"  # type: ignore[attr-defined]


def reproducible_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                       ) -> tuple[FakeRegistry, Path, Path, FakeEngine, list[dict[str, object]]]:
    """The two-platform lock and template on disk, an engine of the containerd store holding
    the registry's index as ``app:multi``, BuildKit chosen, the rebuild stood in for."""
    r, lock = frozen(tmp_path)
    template, path = tmp_path / "Dockerfile.in", tmp_path / "app.lock"
    template.write_text(TEMPLATE)
    lockfile.write(dataclasses.replace(lock, snapshot="20261101T000000Z"), path)
    engine = saved_engine(r, "app:multi")
    builds = buildkit.WithBuilder(engine, buildkit.Buildx(), "BuildKit")
    monkeypatch.setattr("relock.image.engine.connect", lambda *a, **k: engine)
    monkeypatch.setattr(buildkit, "select", lambda e, choice=None: builds)
    monkeypatch.setattr("relock.upstream.registry.registry_for", bases(r))
    seen: list[dict[str, object]] = []
    stub_rebuild(monkeypatch, r.manifests[("team/app", "1")].digest, seen)
    return r, template, path, engine, seen


def each_platform_s(r: FakeRegistry) -> dict[str, tuple[str, str]]:
    """(config, manifest) of each platform's image of ``team/app:1``, from the registry."""
    out = {}
    for platform in BOTH:
        m = r.manifests[("team/app", f"app-{platform[6:]}")]
        config = m.json()["config"]
        assert isinstance(config, dict)
        out[platform] = (str(config["digest"]), m.digest)
    return out


@pytest.mark.parametrize("push", [False, True])
def test_a_reproducible_build_of_two_platforms_records_and_compares_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, push: bool) -> None:
    r, template, path, _, seen = reproducible_world(tmp_path, monkeypatch)
    want = each_platform_s(r)
    tag = f"{r.host}/team/app:pinned" if push else "app:multi"
    request = BuildRequest(dockerfile=template, lock_path=path, platform="all", tag=tag,
                           push=push, reproducible=True)
    said: list[str] = []
    first = command.run_build(request, said.append)
    assert seen[0]["options"].reproducible  # type: ignore[attr-defined]
    assert "reproducibly (SOURCE_DATE_EPOCH=" in said[0]
    assert first.drift == () and first.reproduced is None
    assert [(x.digest.platform, x.digest.config, x.digest.manifest, x.recorded)
            for x in first.reproduced_each] == [(p, *want[p], None) for p in BOTH]
    recorded = lockfile.read(path)
    assert {d.platform: (d.config, d.manifest) for d in recorded.image} == want
    # The next build gives the same images: reproduced, each; verify takes the recorded
    # digests for the check.
    again = command.run_build(request, said.append)
    assert [x.same for x in again.reproduced_each] == [True, True]
    assert again.drift == ()
    assert sum("the image the lock records: nothing more to check" in s for s in said) == 2
    # A lock recording another arm64 image: that one is not reproduced.
    other = tuple(dataclasses.replace(d, config="sha256:" + "e" * 64, manifest="sha256:" +
                                      "f" * 64) if d.platform == "linux/arm64" else d
                  for d in recorded.image)
    lockfile.write(dataclasses.replace(recorded, image=other), path)
    third = command.run_build(request)
    assert [(x.digest.platform, x.same) for x in third.reproduced_each] == [
        ("linux/amd64", True), ("linux/arm64", False)]


def test_each_platform_s_reproduction_is_said_naming_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from relock.cli import cli
    from relock.lock.lockfile import ImageDigest

    def made(platform: str, c: str) -> ImageDigest:
        return ImageDigest(config="sha256:" + c * 64, manifest="sha256:" + c.upper() * 64,
                           platform=platform)

    amd, arm = made("linux/amd64", "a"), made("linux/arm64", "b")
    outcome = command.VerifyOutcome("oci://h/app@sha256:x", "app.lock", (), reproduced_each=(
        command.Reproduction(amd, amd), command.Reproduction(arm, made("linux/arm64", "c"))))
    monkeypatch.setattr(command, "run_build", lambda *a, **k: outcome)
    r = CliRunner().invoke(cli, ["build", "--platform", "all", "--reproducible", "-q"])
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert f"reproduced {amd.manifest} for linux/amd64, as app.lock says" in lines
    assert any(line.startswith("not reproduced: oci://h/app@sha256:x's linux/arm64 image is "
                               f"{arm.manifest}") for line in lines)
