"""A whole pinned rebuild (relock.build.rebuild) through the fakes of tests/fakes.py.

The lock is frozen from an image of one APT package and one pip distribution;
the rebuild renders the template, fetches the locked .deb from a
``FakeArchive`` and serves it, with the locked wheel of a ``FakeIndex``, as the
locked view on loopback. The ``FakeEngine``'s build does what apt and pip in
the RUN would: it reads the view's URL from the rendered Dockerfile in the
build context, takes the newest ``hello`` of the view's Packages index and the
newest ``six`` of its simple page, checks each against the hash the view lists,
and "installs" them (the .deb's control paragraph into dpkg's status, the
wheel's METADATA into a dist-info folder). The image it makes is frozen again
by ``verify``. The index also has a newer, unlocked six: a view that served it
would install it, and verify would name the drift.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from relock.build import rebuild
from relock.build.verify import verify_image
from relock.errors import HashMismatchError
from relock.freeze.freeze import FreezeOptions, freeze_image
from relock.image.engine import BuildEvent, BuildRequest, ImageInfo
from relock.lock.lockfile import Lock
from relock.template.dockerfile import Dockerfile, parse
from tests.fakes import FakeArchive, FakeEngine, FakeIndex, digest, layers, repo_digest

TEMPLATE = ("FROM debian:trixie-slim\n"
            "RUN apt-get install -y hello && pip install six\n")
SITE = "/usr/local/lib/python3.13/dist-packages"
BASE_FILES: Mapping[str, bytes] = {
    "etc/os-release": b"ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n",
    "etc/apt/sources.list": b"deb http://127.0.0.1:9/debian trixie main\n",
    "var/lib/dpkg/status": b"",
    "usr/lib/python3.13/os.py": b"",
}
BASE = ImageInfo("sha256:" + "b" * 64, layers("b"), (repo_digest("debian", digest("d")),))


def ar(members: Mapping[str, bytes]) -> bytes:
    """An ar archive, as a .deb is one."""
    out = [b"!<arch>\n"]
    for name, data in members.items():
        out.append(f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def targz(files: Mapping[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def deb(name: str, version: str) -> bytes:
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
               "Maintainer: relock tests <relock@localhost>\n"
               f"Description: {name} for a test\n").encode()
    return ar({"debian-binary": b"2.0\n", "control.tar.gz": targz({"./control": control}),
               "data.tar.gz": targz({f"./usr/share/{name}/VERSION": version.encode()})})


def wheel(name: str, version: str) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        info = f"{name}-{version}.dist-info"
        z.writestr(f"{name}.py", "")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\n"
                                       f"Version: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
    return raw.getvalue()


def installed(deb_bytes: bytes, wheel_bytes: bytes) -> dict[str, bytes]:
    """What apt and pip leave in the image: dpkg's status entry, the dist-info."""
    from debian.debfile import DebFile

    with DebFile(fileobj=io.BytesIO(deb_bytes)) as d:
        text = d.control.get_content("control", encoding="utf-8")
    assert isinstance(text, str)
    control = text.strip("\n")
    files = {**BASE_FILES,
             "var/lib/dpkg/status": f"{control}\nStatus: install ok installed\n\n".encode()}
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as z:
        for name in z.namelist():
            if ".dist-info/" in name:
                files[f"{SITE.lstrip('/')}/{name}"] = z.read(name)
                folder = name.rpartition("/")[0]
                files[f"{SITE.lstrip('/')}/{folder}/INSTALLER"] = b"pip\n"
    return files


def fetch(url: str) -> bytes:
    # Straight to loopback, as the build's host network does: no proxy of this machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as resp:
        data: bytes = resp.read()
    return data


def newest_deb(view: str, name: str) -> bytes:
    """apt-get install NAME from the view: the newest in its Packages, checked."""
    found = []
    for stanza in fetch(f"{view}/apt/Packages").decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if fields.get("Package") == name:
            found.append(fields)
    assert found, f"the view serves no {name}"
    chosen = max(found, key=lambda f: f["Version"])
    data = fetch(f"{view}/apt/{chosen['Filename']}")
    assert hashlib.sha256(data).hexdigest() == chosen["SHA256"]
    return data


def newest_wheel(view: str, name: str) -> bytes:
    """pip install NAME from the view: the newest file its simple page lists, checked."""
    page = fetch(f"{view}/pypi/simple/{name}/").decode()
    links = re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', page)
    assert links, f"the view lists no file of {name}"
    href, sha = max(links, key=lambda link: link[0].rsplit("/", 1)[-1])
    data = fetch(urllib.parse.urljoin(f"{view}/pypi/simple/{name}/", href))
    assert hashlib.sha256(data).hexdigest() == sha
    return data


def rendered_dockerfile(request: BuildRequest) -> str:
    if request.dockerfile_text is not None:
        # Never inside the context folder the engine gets.
        assert request.context is not None
        assert not any(request.dockerfile_text == p.read_text(errors="replace")
                       for p in request.context.rglob("*") if p.is_file())
        return request.dockerfile_text
    assert request.context_tar is not None
    request.context_tar.seek(0)
    with tarfile.open(fileobj=request.context_tar) as tar:
        member = tar.extractfile(request.dockerfile)
        assert member is not None
        return member.read().decode()


class Builder:
    """The engine's build of the rendered template, doing what its RUN asks of the view."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.dockerfiles: list[str] = []

    def __call__(self, request: BuildRequest) -> Iterator[BuildEvent]:
        text = rendered_dockerfile(request)
        self.dockerfiles.append(text)
        assert f"FROM debian:trixie-slim@{digest('d')}" in text
        m = re.search(r"PIP_INDEX_URL=(http://127\.0\.0\.1:\d+)/pypi/simple/", text)
        assert m, "the RUN is not pointed at the locked view"
        files = installed(newest_deb(m[1], "hello"), newest_wheel(m[1], "six"))
        image = ImageInfo("sha256:" + "c" * 64, (*BASE.layers, *layers("r")))
        self.engine.add(image, files=files)
        yield BuildEvent("log", "Step 2/2 : RUN ...")
        yield BuildEvent("image", image.id)


def upstream() -> tuple[FakeArchive, FakeIndex]:
    archive, index = FakeArchive(), FakeIndex()
    archive.add("hello", "2.10-5", "amd64", deb("hello", "2.10-5"), suite="trixie")
    index.add("six", "six-1.17.0-py3-none-any.whl", wheel("six", "1.17.0"))
    index.add("six", "six-1.18.0-py3-none-any.whl", wheel("six", "1.18.0"))  # not locked
    return archive, index


def frozen(df: Dockerfile, archive: FakeArchive, index: FakeIndex) -> Lock:
    """The lock of the image the template was first built into (six 1.17.0, then)."""
    source = FakeEngine()
    source.add(BASE, "debian:trixie-slim", files=BASE_FILES)
    first = source.add(ImageInfo("sha256:" + "a" * 64, (*BASE.layers, *layers("f"))),
                       files=installed(deb("hello", "2.10-5"), wheel("six", "1.17.0")))
    return freeze_image(source, first.id, df, FreezeOptions(
        index=index, deb_entries=True, archive=archive)).lock


@pytest.fixture
def template(tmp_path: Path) -> Dockerfile:
    (tmp_path / "Dockerfile.in").write_text(TEMPLATE)
    return parse(TEMPLATE, str(tmp_path / "Dockerfile.in"))


def test_a_pinned_rebuild_through_the_fakes_holds_the_lock(template: Dockerfile,
                                                          tmp_path: Path) -> None:
    archive, index = upstream()
    lock = frozen(template, archive, index)
    assert [(p.name, p.version) for p in lock.apt] == [("hello", "2.10-5")]
    assert [(p.name, p.version) for p in lock.pip] == [("six", "1.17.0")]
    engine = FakeEngine()
    engine.add(BASE, "debian:trixie-slim", files=BASE_FILES)
    builder = Builder(engine)
    engine.on_build = builder
    options = rebuild.RebuildOptions(view_port=0, cache_dir=tmp_path / "blobs")

    result = rebuild.rebuild(engine, template, lock, tmp_path, options, {},
                             view=rebuild.Upstream(options, archive=archive, index=index))

    assert builder.dockerfiles == [result.rendered]
    assert archive.fetched == [("hello", "2.10-5", "amd64")]
    assert [u.rsplit("/", 1)[-1] for u in index.opened] == ["six-1.17.0-py3-none-any.whl"]
    assert verify_image(engine, result.image_id, lock) == []


def test_a_deb_that_does_not_match_the_lock_stops_the_rebuild(template: Dockerfile,
                                                              tmp_path: Path) -> None:
    archive, index = upstream()
    lock = frozen(template, archive, index)
    archive.add("hello", "2.10-5", "amd64", deb("hello", "2.10-5") + b"tampered")
    engine = FakeEngine()
    engine.add(BASE, "debian:trixie-slim", files=BASE_FILES)
    options = rebuild.RebuildOptions(view_port=0, cache_dir=tmp_path / "blobs")

    with pytest.raises(HashMismatchError) as e:
        rebuild.rebuild(engine, template, lock, tmp_path, options, {},
                        view=rebuild.Upstream(options, archive=archive, index=index))
    assert "hello 2.10-5 (amd64)" in str(e.value) and "\n" not in str(e.value)
    assert engine.requests == []
    assert not (tmp_path / "blobs" / "sha256" / lock.apt[0].sha256).exists()
