"""--platform as every command takes it, and a tree freeze that reads the tree's own files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relock.freeze.freeze import skipped_warning
from relock.image.registrysource import RegistrySource
from relock.image.rootfs import TreeFS, mounts_below
from relock.lock.platform import PlatformError, chosen, chosen_list
from tests.fakes import FakeRegistry
from tests.hostile.contract import freeze_rootfs, invoke, one_line_error, rootfs

COMMANDS = [["freeze", "img"], ["render"], ["serve"], ["build"], ["sbom"], ["export"],
            ["diff", "a.lock", "b.lock"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("value", ["", " ", "linux/amd64,", "linux", "linux/arm64/v8/x"])
def test_an_empty_or_wrong_platform_is_refused_everywhere(command: list[str],
                                                          value: str) -> None:
    one_line_error(invoke(*command, "--platform", value), "Invalid value for '--platform'",
                   "is not a platform")


def test_the_one_definition_of_a_platform() -> None:
    assert chosen("linux/arm64/v8") == "linux/arm64"
    assert chosen(None) is None
    assert chosen_list(["linux/amd64,linux/arm64/v8", "linux/arm64"]) == [
        "linux/amd64", "linux/arm64"]
    for bad in ("", "linux/amd64,"):
        with pytest.raises(PlatformError):
            chosen_list([bad])


def test_arm64_v8_names_an_index_entry_with_its_variant() -> None:
    reg = FakeRegistry()
    amd = reg.put_image("team/app", [{"etc/os-release": b"ID=debian\n"}])
    arm = reg.put_image("team/app", [{"etc/os-release": b"ID=debian\n"}], arch="arm64")
    entries = [{"mediaType": reg.manifests[("team/app", d)].media_type, "digest": d, "size": 1,
                "platform": p} for d, p in (
                    (amd, {"os": "linux", "architecture": "amd64"}),
                    (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}))]
    reg.put_manifest("team/app", {"schemaVersion": 2,
                                  "mediaType": "application/vnd.oci.image.index.v1+json",
                                  "manifests": entries}, "multi")
    src = RegistrySource(registry_for=lambda host: reg)
    ref = f"oci://{reg.host}/team/app:multi"
    assert src.platforms(ref) == ["linux/amd64", "linux/arm64"]
    for asked in ("linux/arm64/v8", "linux/arm64", "linux/aarch64"):
        assert src.resolve(ref, asked).manifest == arm


# -- a tree's own files -----------------------------------------------------------------

MOUNTINFO = """\
22 27 0:21 / {root}/proc rw,relatime - proc proc rw
23 27 0:22 / {root}/sys rw,relatime - sysfs sysfs rw
24 27 0:6 / {root}/dev rw - devtmpfs devtmpfs rw
26 24 0:24 / {root}/dev/pts rw - devpts devpts rw
30 27 8:1 / {root}/srv/with\\040space rw shared:1 - ext4 /dev/sda1 rw
31 27 8:1 / /elsewhere rw - ext4 /dev/sda1 rw
"""


def test_mounts_below_a_root_are_found_once(tmp_path: Path) -> None:
    found = mounts_below(str(tmp_path), MOUNTINFO.format(root=tmp_path))
    assert found == [("dev", "devtmpfs"), ("proc", "proc"), ("srv/with space", "ext4"),
                     ("sys", "sysfs")]
    assert mounts_below("/", "garbage\n1 2 3\n") == []


def test_a_tree_freeze_skips_mounts_and_container_storage(tmp_path: Path) -> None:
    venv = "lib/python3.13/site-packages/pkg-1.0.dist-info/METADATA"
    meta = "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"
    root = rootfs(tmp_path, {
        f"opt/venv/{venv}": meta,
        f"var/lib/docker/overlay2/abc/diff/opt/venv/{venv}": meta.replace("pkg", "other"),
        f"var/lib/containerd/x/opt/venv/{venv}": meta.replace("pkg", "third"),
        f"srv/with space/opt/venv/{venv}": meta.replace("pkg", "mounted"),
        f"proc/1/root/opt/venv/{venv}": meta.replace("pkg", "procs"),
    })
    fs = TreeFS(root, mountinfo=MOUNTINFO.format(root=root))
    from relock.inventory.pyenv import find_site_dirs

    assert find_site_dirs(fs) == ["/opt/venv/lib/python3.13/site-packages"]
    assert fs.read_bytes(f"/var/lib/docker/overlay2/abc/diff/opt/venv/{venv}") is None
    assert fs.skipped == {"/proc": "proc mounted into the tree",
                          "/srv/with space": "ext4 mounted into the tree",
                          "/var/lib/containerd": "container storage",
                          "/var/lib/docker": "container storage"}
    line, = skipped_warning(fs.skipped)
    assert line.startswith("not the tree's own, so not read: ")
    assert "/var/lib/containerd, /var/lib/docker (container storage)" in line
    assert "\n" not in line


def test_freeze_rootfs_warns_about_container_storage_and_leaves_it_out(tmp_path: Path) -> None:
    venv = "lib/python3.13/site-packages/pkg-1.0.dist-info/METADATA"
    root = rootfs(tmp_path, {
        f"var/lib/docker/overlay2/abc/diff/opt/venv/{venv}":
            "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"})
    out = tmp_path / "x.lock"
    r = freeze_rootfs(root, out)
    assert r.exit_code == 0, r.output
    assert "/var/lib/docker (container storage)" in r.stderr
    assert "[[pip]]" not in out.read_text()


def test_another_device_below_the_root_is_skipped(tmp_path: Path) -> None:
    """A folder on another device than the root's, whatever mountinfo says."""
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on its own file system")
    root = rootfs(tmp_path)
    (root / "shm").symlink_to("/dev/shm")  # a link is never followed: not skipped, not read
    fs = TreeFS(root, mountinfo="")
    assert fs.subdirs("/") is not None and "shm" not in fs.subdirs("/")  # a link, not a dir
    fs2 = TreeFS(Path("/dev"), mountinfo="")
    assert "shm" not in (fs2.subdirs("/") or [])
    assert fs2.skipped.get("/shm") == "another file system mounted into the tree"
