"""relock.lock.command and relock.lock.locate: the merge use case, and where a lock lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from relock.errors import UsageError
from relock.lock import lockfile
from relock.lock.command import MergeRequest, run_merge
from relock.lock.locate import default_lock, lock_name
from tests.lock.test_merge import BASE, apt, with_apt


def write(tmp_path: Path, **locks: lockfile.Lock) -> dict[str, Path]:
    paths = {}
    for name, lock in locks.items():
        paths[name] = tmp_path / f"{name}.lock"
        lockfile.write(lock, paths[name], image="sci")
    return paths


def test_a_clean_merge_is_written_over_ours(tmp_path: Path) -> None:
    p = write(tmp_path, base=BASE, ours=with_apt(BASE, apt("curl", "8.2-1")),
              theirs=with_apt(BASE, drop="zlib1g"))
    header = p["ours"].read_text().split("\n[", 1)[0].split("version")[0]
    assert run_merge(MergeRequest(p["base"], p["ours"], p["theirs"])) == ()
    merged = lockfile.read(p["ours"])
    assert [(a.name, a.version) for a in merged.apt] == [("curl", "8.2-1"), ("libssl3", "3.0.1-1")]
    assert p["ours"].read_text().startswith(header)


def test_a_conflict_is_returned_and_marked_in_ours(tmp_path: Path) -> None:
    p = write(tmp_path, base=BASE, ours=with_apt(BASE, apt("curl", "8.2-1")),
              theirs=with_apt(BASE, apt("curl", "8.3-1")))
    conflicts = run_merge(MergeRequest(p["base"], p["ours"], p["theirs"], marker_size=9))
    assert [c.name for c in conflicts] == ["apt curl amd64"]
    text = p["ours"].read_text()
    assert "<" * 9 + " ours" in text and ">" * 9 + " theirs" in text


def test_the_default_lock_is_the_only_one_in_locks(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_lock(Path("given.lock")) == Path("given.lock")
    with pytest.raises(UsageError, match=r"^no --lock given and no locks/\*\.lock here$"):
        default_lock(None)
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "a.lock").write_text("")
    assert default_lock(None) == Path("locks/a.lock")
    (tmp_path / "locks" / "b.lock").write_text("")
    with pytest.raises(UsageError, match=r"several locks in locks/ \(locks/a.lock, "
                                         r"locks/b.lock\); name one with --lock"):
        default_lock(None)


@pytest.mark.parametrize(("image", "name"), [
    ("sci", "sci"), ("127.0.0.1:5000/team/sci:1", "sci"), ("docker.io/library/debian", "debian"),
])
def test_a_lock_is_named_for_the_repository(image: str, name: str) -> None:
    assert lock_name(image) == name


def test_an_image_id_names_no_lock() -> None:
    with pytest.raises(UsageError, match=r"sha256:0123456789ab\.\.\. is an image ID"):
        lock_name("sha256:" + "0123456789abcdef" * 4)
