"""The build context a reproducible build takes: a copy with every time SOURCE_DATE_EPOCH
and no group or other write, .dockerignore applied, links copied and never followed."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from relock.errors import RelockError
from relock.image import buildcontext, buildkit
from relock.image.engine import BuildRequest, context_paths
from tests.image.test_buildkit import fake_docker, oci_archive

EPOCH = 1_700_000_000


def checkout(root: Path) -> Path:
    """A context as a checkout leaves one: times of the moment, a umask-002 mode, a link
    out of it, an ignored folder, a socket."""
    ctx = root / "ctx"
    (ctx / "src" / "pkg").mkdir(parents=True)
    (ctx / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (ctx / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(ctx / "run.sh", 0o775)
    os.chmod(ctx / "src" / "pkg" / "mod.py", 0o664)
    (ctx / ".git").mkdir()
    (ctx / ".git" / "HEAD").write_text("ref\n")
    (ctx / ".dockerignore").write_text(".git\n*.tmp\n")
    (ctx / "junk.tmp").write_text("no\n")
    (root / "secret").write_text("outside\n")
    (ctx / "link").symlink_to(root / "secret")
    return ctx


def test_the_copy_has_one_time_no_group_write_and_only_what_a_build_sees(
        tmp_path: Path) -> None:
    ctx = checkout(tmp_path)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(ctx / "sock"))
        dest = tmp_path / "copy"
        dest.mkdir()
        files = buildcontext.normalized_copy(
            ctx, context_paths(ctx, buildcontext.ignore_patterns(ctx)), dest, EPOCH)
    names = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert names == [".dockerignore", "link", "run.sh", "src", "src/pkg", "src/pkg/mod.py"]
    assert files == 3
    for path in [dest, *dest.rglob("*")]:
        st = os.lstat(path)
        assert st.st_mtime == EPOCH, path
        assert stat.S_ISLNK(st.st_mode) or st.st_mode & 0o022 == 0, path
    assert stat.S_IMODE(os.stat(dest / "run.sh").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "src/pkg/mod.py").st_mode) == 0o644
    # The link is a link (to where it pointed), its target never read into the copy.
    assert os.readlink(dest / "link") == str(tmp_path / "secret")
    # The user's checkout is untouched.
    assert stat.S_IMODE(os.stat(ctx / "run.sh").st_mode) == 0o775
    assert os.stat(ctx / "run.sh").st_mtime != EPOCH


def test_a_context_that_cannot_be_copied_is_one_line(tmp_path: Path) -> None:
    ctx = checkout(tmp_path)
    dest = tmp_path / "copy"
    dest.mkdir()
    (dest / "run.sh").write_text("already here\n")
    with pytest.raises(RelockError, match=r"cannot copy the build context .* reproducible"):
        buildcontext.normalized_copy(ctx, {"run.sh"}, dest, EPOCH)


def test_a_reproducible_buildkit_build_takes_the_normalised_copy(tmp_path: Path) -> None:
    ctx = checkout(tmp_path)
    archive = tmp_path / "made.tar"
    oci_archive(archive)
    docker = fake_docker(tmp_path, [])
    # The fake notes the context it was given (the last argument) and one file's time and
    # mode there, then writes the archive where --output says and takes `docker load`.
    text = docker.read_text().replace(
        'printf \'%s\\n\' "$@" > ', 'if [ "$1" = load ]; then exit 0; fi\n'
        'for a in "$@"; do last=$a; done\n'
        f'stat -c "%Y %a" "$last/src/pkg/mod.py" > {tmp_path}/seen\n'
        'printf \'%s\\n\' "$@" > ', 1).replace(
        f"cat {tmp_path / 'status.txt'}",
        f'for a in "$@"; do case $a in type=oci,dest=*) d=${{a#type=oci,dest=}}; '
        f'cp {archive} "${{d%%,*}}";; esac; done\ncat {tmp_path / "status.txt"}')
    docker.write_text(text)
    events = list(buildkit.Buildx(docker=str(docker)).build(BuildRequest(
        dockerfile="Dockerfile", context=ctx, dockerfile_text="FROM scratch\n", tag="t:1",
        source_date_epoch=EPOCH)))
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[-1] != str(ctx)
    assert (tmp_path / "seen").read_text().split() == [str(EPOCH), "644"]
    assert any(e.kind == "log" and "3 files, each dated SOURCE_DATE_EPOCH" in e.text
               for e in events)
    # A plain build takes the user's folder itself.
    list(buildkit.Buildx(docker=str(docker)).build(BuildRequest(
        dockerfile="Dockerfile", context=ctx, dockerfile_text="FROM scratch\n", tag="t:1")))
    assert (tmp_path / "argv").read_text().splitlines()[-1] == str(ctx)
