"""The Docker engine behind relock's seam: a build from a ready tar context."""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid
from typing import Any

import pytest

from relock.build.enginebuild import build
from relock.image.engine import DockerEngine

pytestmark = pytest.mark.engine


def test_build_from_a_tar_file_object_with_extra_hosts(docker_engine: DockerEngine,
                                                       client: Any) -> None:
    text = (b"FROM debian:trixie-slim\n"
            b"RUN getent hosts relock-seam-test | grep -q '^127.0.0.9 '\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("custom.Dockerfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    buf.seek(0)
    tag = f"relock-test-tarctx:{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    try:
        result = build(docker_engine, buf, "custom.Dockerfile", tag=tag, log=lines.append,
                       extra_hosts={"relock-seam-test": "127.0.0.9"})
        image = docker_engine.image(tag)
        assert image.id.startswith("sha256:")
        assert image.id.removeprefix("sha256:").startswith(
            result.image_id.removeprefix("sha256:"))
        assert image.sits_on(docker_engine.image("debian:trixie-slim"))
        assert any("getent hosts relock-seam-test" in line for line in lines)
    finally:
        with contextlib.suppress(Exception):
            client.images.remove(tag, force=True)
