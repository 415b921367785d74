"""What relock writes: atomic, never half-written, never onto a non-file, no control characters."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relock.lock import lockfile
from tests.hostile.contract import (
    GOOD,
    files_in,
    freeze_rootfs,
    invoke,
    one_line_error,
    render_args,
    rootfs,
)


def test_output_on_a_device_node_is_refused(tmp_path: Path) -> None:
    """B3: -o naming a device never replaces the node."""
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    one_line_error(freeze_rootfs(rootfs(tmp_path), node), "not a regular file; not replacing")
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert files_in(tmp_path) == ["null", "root"]


# Issue 12's review: B3.
def test_output_on_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "x.lock"
    os.mkfifo(fifo)
    one_line_error(freeze_rootfs(rootfs(tmp_path), fifo), "not a regular file; not replacing")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_output_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.lock"
    real.write_text("old")
    link = tmp_path / "x.lock"
    link.symlink_to(real)
    assert freeze_rootfs(rootfs(tmp_path), link).exit_code == 0
    assert link.is_symlink() and lockfile.read(real).apt[0].name == "bash"


def test_full_disk_keeps_the_old_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B1: -o on a full file system is one line; the old lock stays, no temp file."""
    import errno

    from relock import files

    out = tmp_path / "locks" / "x.lock"
    out.parent.mkdir()
    out.write_text("old lock")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    one_line_error(freeze_rootfs(rootfs(tmp_path), out), str(out), "No space left on device",
                   "the old file is kept")
    assert out.read_text() == "old lock"
    assert files_in(out.parent) == ["x.lock"]


def test_an_image_id_as_image_needs_a_lock_name(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """B11: a full image ID as IMAGE never writes locks/sha256.lock."""
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("freeze", "sha256:" + "a" * 64), "is an image ID", "-o PATH or --name")
    one_line_error(invoke("freeze", "a" * 12), "is an image ID")
    one_line_error(invoke("freeze", "sha256:abc"), "is an image ID")
    assert files_in(tmp_path) == []


def test_an_atomic_write_takes_a_fresh_temporary_name_each_time(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """The temp file beside the target is created O_EXCL under a random name: a file
    already at one name is never opened, the next name is tried."""
    from relock import files

    names: list[str] = []
    real_open = os.open

    def recording_open(path: str, flags: int, mode: int = 0o777) -> int:
        names.append(os.path.basename(path))
        if len(names) == 1:  # the first name is taken, as by a file planted there
            Path(path).write_text("someone else's\n")
        return real_open(path, flags, mode)

    monkeypatch.setattr(files.os, "open", recording_open)
    files.atomic_write_text(tmp_path / "x.lock", "new\n")
    assert len(names) == 2 and names[0] != names[1]
    assert all(n.startswith(".x.lock.") and n.endswith(".tmp") for n in names)
    assert (tmp_path / names[0]).read_text() == "someone else's\n"  # left as it was
    assert (tmp_path / "x.lock").read_text() == "new\n"
    assert (tmp_path / "x.lock").stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / names[1]).exists()


def _python(code: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_in_the_write_window_leaves_no_temp_file(tmp_path: Path) -> None:
    """B4: SIGTERM while the temp file is written: after it, no .NAME.lock.XXXX.tmp."""
    code = f"""
import os, time
from pathlib import Path
from relock import files
real_fsync = os.fsync
def slow_fsync(fd):
    Path({str(tmp_path / "in-window")!r}).touch()
    time.sleep(1.5)
    real_fsync(fd)
files.os.fsync = slow_fsync
files.atomic_write_text(Path({str(tmp_path / "out" / "x.lock")!r}), "new\\n")
print("finished")
"""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.lock").write_text("old\n")
    proc = _python(code, tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "in-window").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    assert any(n.endswith(".tmp") for n in files_in(tmp_path / "out"))  # in the window
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert "finished" not in out
    assert files_in(tmp_path / "out") == ["x.lock"]
    assert (tmp_path / "out" / "x.lock").read_text() in ("old\n", "new\n")


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-fifo"])
def test_render_output_on_a_non_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    """B3 for render: the pinned Dockerfile never replaces a FIFO or a device."""
    lock = tmp_path / "x.lock"
    lock.write_text(GOOD)
    template = tmp_path / "Dockerfile.in"
    template.write_text("FROM debian:trixie-slim\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = fifo
    if kind == "symlink-to-fifo":
        out = tmp_path / "out"
        out.symlink_to(fifo)
    r = invoke("render", "-f", str(template), "--lock", str(lock), "-o", str(out), "--force")
    one_line_error(r, "not a regular file; not replacing")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert out == fifo or out.is_symlink()


def test_render_on_a_full_disk_keeps_the_old_output(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """B1/B2: render's -o on a full file system: one line, the old file stays, no temp."""
    import errno

    from relock import files

    out = tmp_path / "out" / "Dockerfile"
    out.parent.mkdir()
    out.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    one_line_error(invoke(*render_args(tmp_path, out)), str(out), "No space left on device",
                   "the old file is kept")
    assert out.read_text() == "old\n"
    assert files_in(out.parent) == ["Dockerfile"]


def test_render_into_a_folder_nothing_can_be_written_to(tmp_path: Path) -> None:
    """B1: a read-only output folder for render (as root, /sys is one) is one line."""
    folder = Path("/sys/relock-hostile-test")
    if os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
        pytest.skip("no read-only folder to write into")
    one_line_error(invoke(*render_args(tmp_path, folder / "Dockerfile")), str(folder),
                   "cannot write here")
    assert not folder.exists()


def test_eight_renders_to_one_output_at_once(tmp_path: Path) -> None:
    """B2: concurrent renders to one -o: every one exits 0 and the file is whole."""
    out = tmp_path / "out" / "Dockerfile"
    args = render_args(tmp_path, out)
    assert invoke(*args).exit_code == 0
    expected = out.read_text()
    out.unlink()
    procs = [subprocess.Popen([sys.executable, "-m", "relock", *args], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert out.read_text() == expected
    assert files_in(out.parent) == ["Dockerfile"]


def test_diff_of_images_shows_escapes_not_terminal_sequences(tmp_path: Path) -> None:
    """S7: values that reach diff unchecked (an image side) are escaped in text and Markdown."""
    from relock.freeze.sides import Side
    from relock.lock import diffformat
    from relock.lock.diff import diff_locks

    old = lockfile.loads(GOOD)
    evil_name = "bash\x1b]0;pwned\x07\x1b[2J"
    evil_version = "5.2 | **x** |\n### Forged heading\n<img src=x>"
    new = old.__class__(**{**old.__dict__, "apt": (
        old.apt[0].__class__(**{**old.apt[0].__dict__, "name": evil_name}),
        old.apt[1].__class__(**{**old.apt[1].__dict__, "version": evil_version}),
    )})
    d = diff_locks(old, new)
    text = diffformat.format_text(d)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07" in text
    assert "### Forged" not in text.replace("\\n### Forged", "")
    sides = [Side(label=f"a\nb{i}", kind="file", lock=x) for i, x in enumerate((old, new))]
    md = diffformat.format_markdown(d, sides[0], sides[1])
    assert "\x1b" not in md
    assert not any(line.startswith("### Forged") for line in md.splitlines())
    assert "<img" not in md.replace("\\<img", "")  # shown as text, not HTML
    table = [line for line in md.splitlines() if "zlib1g" in line]
    assert len(table) == 1
    # The row keeps its 4 cells: every '|' from the value is escaped.
    assert table[0].replace("\\|", "").count("|") == 5
    assert md.splitlines()[0].count("\n") == 0 and "a\\nb0" in md.splitlines()[0]
