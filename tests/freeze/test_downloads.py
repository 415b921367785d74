"""Plain downloads of a template: found by its words, locked from the image's file or the
URL's answer, pointed at the view by render."""

from __future__ import annotations

import hashlib
from pathlib import Path

from relock.blobs import BlobCache
from relock.errors import RelockError
from relock.freeze.downloads import from_image, lock_downloads
from relock.lock.lockfile import Base, Distro, Download, Input, Lock, dumps, loads
from relock.template import dockerfile
from relock.template.fetches import plain_downloads
from relock.template.render import RenderOptions, render

ZEROS = "0" * 64
TEMPLATE = f"""\
ARG V=1.2
FROM debian:trixie-slim
ARG V
ARG TARGETARCH
WORKDIR /opt
RUN apt-get update && apt-get install -y curl \\
 && curl -fsSLo tool.tgz https://files.test/$V/tool-${{TARGETARCH}}.tgz && cd x && wget -q https://files.test/a/b.bin
RUN curl -fsSL https://files.test/s.tgz | tar xz -C /opt \\
 && curl -fsSL -O https://files.test/o/c.txt --output-dir /srv \\
 && wget -qO- https://files.test/p | sh
RUN curl https://files.test/r > /r.txt; curl -o /x1 https://files.test/1 -o /x2 https://files.test/2
RUN pip install --index-url https://pypi.test/simple/ six
ADD --checksum=sha256:{ZEROS} https://files.test/add/f.whl /wheels/
ADD https://files.test/add/g.bin g.bin
RUN ["curl", "-o", "/e", "https://files.test/e"]
RUN --mount=type=cache,target=/root/.cache \\
    --network=default X=1 curl -o /m https://files.test/m
RUN curl -fsSL "$UNKNOWN/x" -o /u
ADD app.tar.gz /srv/
"""


def parsed() -> dockerfile.Dockerfile:
    return dockerfile.parse(TEMPLATE)


def test_each_url_with_where_its_file_lands_and_nothing_else() -> None:
    found = [(d.line, d.instruction, d.url, d.path, d.unresolved)
             for d in plain_downloads(parsed(), "linux/arm64")]
    assert found == [
        (6, "RUN", "https://files.test/1.2/tool-arm64.tgz", "/opt/tool.tgz", ""),
        (6, "RUN", "https://files.test/a/b.bin", "/opt/x/b.bin", ""),
        (8, "RUN", "https://files.test/s.tgz", "", ""),
        (8, "RUN", "https://files.test/o/c.txt", "/srv/c.txt", ""),
        (8, "RUN", "https://files.test/p", "", ""),
        (11, "RUN", "https://files.test/r", "/r.txt", ""),
        (11, "RUN", "https://files.test/1", "/x1", ""),
        (11, "RUN", "https://files.test/2", "/x2", ""),
        (13, "ADD", "https://files.test/add/f.whl", "/wheels/f.whl", ""),
        (14, "ADD", "https://files.test/add/g.bin", "/opt/g.bin", ""),
        (15, "RUN", "https://files.test/e", "/e", ""),
        (16, "RUN", "https://files.test/m", "/m", ""),
        (18, "RUN", "$UNKNOWN/x", "/u", "UNKNOWN"),
    ]


class Files:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read_bytes(self, path: str) -> bytes | None:
        return self.files.get(path)


def empty_lock() -> Lock:
    return Lock(input=Input("Dockerfile.in", ""), distro=Distro(id="debian"))


def test_the_image_file_is_locked_else_the_url_is_fetched(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    held = from_image(parsed(), Files({"/opt/tool.tgz": b"tool", "/x1": b"one"}),  # type: ignore[arg-type]
                      cache)
    assert set(held) == {"https://files.test/1.2/tool-amd64.tgz", "https://files.test/1"}
    assert cache.path(hashlib.sha256(b"tool").hexdigest()) is not None

    asked: list[str] = []

    def fetch(url: str) -> tuple[str, int]:
        asked.append(url)
        if url.endswith("/p"):
            raise RelockError("https://files.test/p: HTTP 404")
        return hashlib.sha256(url.encode()).hexdigest(), len(url)

    lock, found = lock_downloads(empty_lock(), parsed(), held, fetch)
    urls = {d.url: d for d in lock.download}
    assert urls["https://files.test/1.2/tool-amd64.tgz"].path == "/opt/tool.tgz"
    assert urls["https://files.test/s.tgz"].path == ""
    assert "https://files.test/p" not in urls and "$UNKNOWN/x" not in urls
    assert "https://files.test/1.2/tool-amd64.tgz" not in asked
    text = "\n".join(found.warnings)
    assert "the lock holds what the URL gives now" in text
    assert "did not answer with its file (https://files.test/p: HTTP 404)" in text
    assert "no ARG, ENV or build argument gives $UNKNOWN" in text
    # The lock reads back with them.
    again = loads(dumps(lock).split("\n", 3)[3])
    assert again.download == lock.sorted().download

    _, offline = lock_downloads(empty_lock(), parsed(), held, None)
    assert any("with --no-index freeze fetches nothing" in w for w in offline.warnings)


def test_render_points_a_locked_add_at_the_view_and_names_the_rest() -> None:
    sha = "ab" * 32
    base = Base(stage=0, ref="debian:trixie-slim", digest="sha256:" + "cd" * 32)
    lock = Lock(input=Input("Dockerfile.in", ""), distro=Distro(id="debian"), base=(base,),
                download=(Download("https://files.test/add/f.whl", sha, 3),))
    rendered = render(parsed(), lock, RenderOptions(view_url="http://127.0.0.1:7780"))
    assert (f"ADD --checksum=sha256:{ZEROS} http://127.0.0.1:7780/relock/download/{sha}/f.whl "
            "/wheels/") in rendered.dockerfile
    assert "ADD https://files.test/add/g.bin g.bin" in rendered.dockerfile
    notes = "\n".join(rendered.notes)
    assert "f.whl: from the locked view" in notes
    assert "g.bin is not in the lock" in notes


def test_a_refreeze_of_one_platform_keeps_the_others_urls_and_drops_stale_ones() -> None:
    arm = "https://files.test/1.2/tool-arm64.tgz"
    old = "https://files.test/gone.bin"
    lock = Lock(input=Input("Dockerfile.in", ""), distro=Distro(id="debian"), platform="",
                platforms=("linux/amd64", "linux/arm64"),
                download=(Download(arm, "1" * 64, 1), Download(old, "2" * 64, 2)))
    out, _ = lock_downloads(lock, parsed(), {}, lambda url: ("3" * 64, 3), "linux/amd64")
    urls = {d.url for d in out.download}
    assert arm in urls and "https://files.test/1.2/tool-amd64.tgz" in urls
    assert old not in urls


def test_an_image_source_keeps_the_download_paths_readable(tmp_path: Path) -> None:
    import io

    from relock import bounds
    from relock.freeze.downloads import image_paths
    from relock.image.rootfs import TarFS
    from tests.fakes import layer_tar

    paths = image_paths(parsed())
    assert "opt/tool.tgz" in paths and "x1" in paths and all(not p.startswith("/")
                                                              for p in paths)
    layer, _ = layer_tar({"opt/tool.tgz": b"tool", "x1": b"o" * 3000, "opt/other": b"no"})
    fs = TarFS(io.BytesIO(layer), keep=("etc/os-release",), also=paths)
    assert fs.read_bytes("/opt/tool.tgz") == b"tool"
    assert fs.read_bytes("/opt/other") is None  # listed, not held
    old, bounds.LAYER_FILE = bounds.LAYER_FILE, 1000
    try:
        fs = TarFS(io.BytesIO(layer), keep=("etc/",), also=paths)  # over the limit: refused
        held = from_image(parsed(), fs, BlobCache(tmp_path))
    finally:
        bounds.LAYER_FILE = old
    assert set(held) == {"https://files.test/1.2/tool-amd64.tgz"}
