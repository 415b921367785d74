"""relock audit: the lock against OSV records written in OSV's own schema, offline."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.lock import lockfile
from relock.supply import audit, osv

SMALL = Path(__file__).resolve().parent.parent / "golden" / "supply" / "small.lock"


def record(rid: str, ecosystem: str, name: str, *, events: list[dict[str, str]] | None = None,
           versions: list[str] | None = None, aliases: list[str] | None = None,
           range_type: str = "ECOSYSTEM", **extra: Any) -> dict[str, Any]:
    """A record as OSV publishes it (schema 1.6: id, modified, aliases, affected, ...)."""
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if ecosystem.startswith("Debian"):
        affected["package"]["purl"] = f"pkg:deb/debian/{name}?arch=source"
    else:
        affected["package"]["purl"] = f"pkg:pypi/{name.lower()}"
    if events is not None:
        affected["ranges"] = [{"type": range_type, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return {"schema_version": "1.6.0", "id": rid, "modified": "2026-10-01T00:00:00Z",
            "published": "2026-09-30T00:00:00Z", "aliases": aliases or [],
            "summary": f"{name} - security update", "details": "Details.",
            "affected": [affected],
            "references": [{"type": "ADVISORY",
                            "url": f"https://security.example.test/{rid.lower()}"}],
            **extra}


RECORDS = [
    # A source package whose binaries have other names (libssl3t64), fixed after the lock's.
    record("DSA-9001-1", "Debian:13", "openssl", aliases=["CVE-2026-0001"],
           events=[{"introduced": "0"}, {"fixed": "3.5.1-2"}]),
    # The same source package in another release: not this lock's.
    record("DSA-9002-1", "Debian:12", "openssl",
           events=[{"introduced": "0"}, {"fixed": "3.0.17-1~deb12u9"}]),
    # A binNMU: the lock has bash 5.2.37-2+b5 built from source 5.2.37-2, which is listed.
    record("DEBIAN-CVE-2026-0002", "Debian:13", "bash", versions=["5.2.37-2"],
           aliases=["CVE-2026-0002"]),
    # An epoch: 1:1.3... is above 1.3.1-5 (epoch 0), so this one does not hit...
    record("DEBIAN-CVE-2026-0003", "Debian:13", "zlib",
           events=[{"introduced": "0"}, {"fixed": "1.3.1-5"}]),
    # ...and this one does.
    record("DEBIAN-CVE-2026-0004", "Debian:13", "zlib",
           events=[{"introduced": "0"}, {"fixed": "1:1.3.dfsg+really1.3.1-2"}]),
    # Withdrawn: skipped.
    record("DEBIAN-CVE-2026-0005", "Debian:13", "bash",
           events=[{"introduced": "0"}, {"fixed": "5.3-1"}], withdrawn="2026-10-02T00:00:00Z"),
    # A package the lock lacks.
    record("DSA-9003-1", "Debian:13", "glibc", events=[{"introduced": "0"}, {"fixed": "9.9-1"}]),
    # PyPI: a name not normalised, an ECOSYSTEM range.
    record("PYSEC-2026-1", "PyPI", "Requests", aliases=["CVE-2026-0006", "GHSA-aaaa-bbbb-cccc"],
           events=[{"introduced": "2.0.0"}, {"fixed": "2.32.4"}]),
    # PEP 440 order: 3.10 is above 3.7 (as text it is below).
    record("PYSEC-2026-2", "PyPI", "idna", events=[{"introduced": "0"}, {"fixed": "3.7"}]),
    # A versions list only (no fix known), with a version PEP 440 refuses left out.
    record("GHSA-dddd-eeee-ffff", "PyPI", "IDNA", versions=["3.9", "3.10", "not a version"]),
    # last_affected: up to and with 2.32.3.
    record("PYSEC-2026-3", "PyPI", "requests",
           events=[{"introduced": "0"}, {"last_affected": "2.32.3"}]),
    # last_affected below the lock's version: no hit.
    record("PYSEC-2026-4", "PyPI", "requests",
           events=[{"introduced": "0"}, {"last_affected": "2.32.2"}]),
    # A GIT range names commits: not judged.
    record("OSV-2026-5", "PyPI", "requests", range_type="GIT",
           events=[{"introduced": "0"}, {"fixed": "abc123"}]),
    # A build stage's distribution is not in the image.
    record("PYSEC-2026-6", "PyPI", "pip-tools", events=[{"introduced": "0"}]),
]
EXPECTED = {("Debian:13", "bash", "5.2.37-2", "DEBIAN-CVE-2026-0002", ""),
            ("Debian:13", "openssl", "3.5.1-1", "DSA-9001-1", "3.5.1-2"),
            ("Debian:13", "zlib", "1:1.3.dfsg+really1.3.1-1", "DEBIAN-CVE-2026-0004",
             "1:1.3.dfsg+really1.3.1-2"),
            ("PyPI", "idna", "3.10", "GHSA-dddd-eeee-ffff", ""),
            ("PyPI", "requests", "2.32.3", "PYSEC-2026-1", "2.32.4"),
            ("PyPI", "requests", "2.32.3", "PYSEC-2026-3", "")}


def write_folder(folder: Path, records: list[dict[str, Any]]) -> Path:
    (folder / "PyPI").mkdir(parents=True)
    (folder / "Debian").mkdir()
    for r in records:
        eco = "PyPI" if r["affected"][0]["package"]["ecosystem"] == "PyPI" else "Debian"
        (folder / eco / f"{r['id']}.json").write_text(json.dumps(r))
    return folder


def write_zip(path: Path, records: list[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    return path


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["audit", "--lock", str(SMALL), *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_findings_from_a_folder_and_a_zip_agree(tmp_path: Path) -> None:
    lock = lockfile.read(SMALL)
    for source in (write_folder(tmp_path / "osv", RECORDS),
                   write_zip(tmp_path / "all.zip", RECORDS)):
        report = audit.audit(lock, osv.read_all(source))
        assert {(f.ecosystem, f.package, f.version, f.id, f.fixed)
                for f in report.findings} == EXPECTED
        assert report.records == len(RECORDS) and report.withdrawn == 1
    ssl = next(f for f in report.findings if f.package == "openssl")
    assert ssl.binaries == ("libssl3t64", "openssl") and ssl.aliases == ("CVE-2026-0001",)
    assert ssl.url == "https://security.example.test/dsa-9001-1"


def test_exit_codes_and_formats(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "osv", RECORDS)
    code, out, _ = run("--osv", str(folder))
    assert code == 1
    assert "Debian:13  openssl 3.5.1-1 [libssl3t64, openssl]: DSA-9001-1 (CVE-2026-0001), " \
           "fixed in 3.5.1-2" in out
    assert "6 findings in 14 records (1 withdrawn, skipped)" in out
    assert "was not checked" in out
    code, out, _ = run("--osv", str(folder), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and len(doc["findings"]) == 6 and doc["fix_checked"] is False
    code, out, _ = run("--osv", str(folder), "--format", "markdown")
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert code == 1 and len(rows) == 2 + 6
    assert all(row.count(" | ") == 5 for row in rows)
    clean = write_folder(tmp_path / "clean", [RECORDS[1], RECORDS[6]])
    code, out, _ = run("--osv", str(clean))
    assert code == 0 and out.startswith("0 findings in 2 records")


def test_debian_testing_without_a_release_number_says_so(tmp_path: Path) -> None:
    import dataclasses

    lock = dataclasses.replace(lockfile.read(SMALL),
                               distro=lockfile.Distro("debian", "", "sid"))
    report = audit.audit(lock, osv.read_all(write_folder(tmp_path / "o", RECORDS)))
    assert {f.ecosystem for f in report.findings} == {"PyPI"}
    assert report.notes and "no OSV ecosystem for debian sid" in report.notes[0]


@pytest.mark.parametrize(("version", "events", "hit", "fixed"), [
    ("1.5", [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"},
             {"fixed": "4.0"}], True, "2.0"),
    ("2.5", [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"},
             {"fixed": "4.0"}], False, ""),
    ("3.0", [{"introduced": "3.0"}, {"fixed": "4.0"}, {"introduced": "1.0"},
             {"fixed": "2.0"}], True, "4.0"),
    ("0.9", [{"introduced": "1.0"}], False, ""),
    ("5.0", [{"introduced": "0"}, {"limit": "5.0"}], False, ""),
])
def test_range_evaluation(version: str, events: list[dict[str, str]], hit: bool,
                          fixed: str) -> None:
    from packaging.version import Version

    r = osv.Range("ECOSYSTEM", tuple(osv.Event(k, v) for e in events for k, v in e.items()))
    found = audit.affected_by(Version(version), r, audit._pep440)
    assert found == (hit, fixed if hit else found[1])


# -- whether each fix is in the lock's sources now (--fixes) ----------------------------

def _fakes(template_requests: str = "") -> tuple[Any, Any]:
    from tests.fakes import FakeArchive, FakeIndex

    archive = FakeArchive()
    # openssl's fix is in the security suite, for both binaries built from it.
    archive.add("libssl3t64", "3.5.1-2", "amd64", suite="trixie-security")
    archive.add("openssl", "3.5.1-2", "amd64", suite="trixie-security")
    # zlib's fix (1:1.3.dfsg+really1.3.1-2) is later than anything the archive has: its
    # newest zlib1g is a binNMU of the locked source, below the fix.
    archive.add("zlib1g", "1:1.3.dfsg+really1.3.1-1+b2", "amd64", suite="trixie")
    archive.add("bash", "5.2.37-3", "amd64")
    index = FakeIndex()
    for filename in ("requests-2.32.3-py3-none-any.whl", "requests-2.32.4-py3-none-any.whl",
                     "requests-2.33.0-py3-none-any.whl", "idna-3.10-py3-none-any.whl"):
        index.add(filename.split("-")[0], filename)
    return archive, index


def test_fixes_are_looked_up_as_relock_outdated_sees_the_sources(tmp_path: Path) -> None:
    lock = lockfile.read(SMALL)
    report = audit.audit(lock, osv.read_all(write_folder(tmp_path / "osv", RECORDS)))
    archive, index = _fakes()
    checked = audit.check_fixes(report, lock, archive=archive, index=index)
    assert checked.fix_checked
    got = {(f.package, f.id): (f.fix_available, f.newest, f.update, f.held_back_by)
           for f in checked.findings}
    assert got == {
        ("openssl", "DSA-9001-1"): (True, "3.5.1-2",
                                    "relock update libssl3t64 openssl (or --security)", ""),
        ("zlib", "DEBIAN-CVE-2026-0004"): (False, "1:1.3.dfsg+really1.3.1-1+b2", "", ""),
        ("bash", "DEBIAN-CVE-2026-0002"): (None, "5.2.37-3", "", ""),  # no fix known
        ("requests", "PYSEC-2026-1"): (True, "2.33.0", "relock update requests", ""),
        ("requests", "PYSEC-2026-3"): (None, "2.33.0", "", ""),
        ("idna", "GHSA-dddd-eeee-ffff"): (None, "", "", ""),
    }
    # The template holds requests below its fix: not closable by an update now.
    held = audit.check_fixes(report, lock, archive=archive, index=index,
                             template={"requests": ["requests<2.32.4"]})
    f = next(f for f in held.findings if f.id == "PYSEC-2026-1")
    assert (f.fix_available, f.held_back_by) == (False, "requests<2.32.4")
    assert audit.fix_text(f) == "2.33.0 is in the sources, held back by requests<2.32.4"
    # Only the packages found are asked for.
    assert set(index.asked) == {"requests", "idna"}


def test_one_binary_without_the_fix_leaves_it_unavailable(tmp_path: Path) -> None:
    from tests.fakes import FakeArchive

    lock = lockfile.read(SMALL)
    report = audit.audit(lock, osv.read_all(write_folder(tmp_path / "osv", RECORDS[:1])))
    archive = FakeArchive()
    archive.add("openssl", "3.5.1-2", "amd64", suite="trixie-security")  # libssl3t64 not yet
    (f,) = audit.check_fixes(report, lock, archive=archive, index=None).findings
    assert (f.fix_available, f.update) == (False, "")
    assert audit.fix_text(f) == "not in the sources yet (newest 3.5.1-2)"


def test_fixes_against_a_loopback_archive_and_index(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """relock audit --fixes end to end: an APT archive and a package index on loopback."""
    from relock.lock.lockfile import (
        AptPackage,
        AptSource,
        Distro,
        Input,
        Lock,
        PipPackage,
        PythonEnv,
    )
    from tests.support import aptarchive, simpleindex

    with aptarchive.serve(tmp_path / "apt", suite="trixie") as served:
        served.publish("20261101T000000Z", [aptarchive.Deb("hello", "1.0-1"),
                                            aptarchive.Deb("hello", "1.0-2"),
                                            aptarchive.Deb("libworld1", "2.0-1")])
        wheels = tmp_path / "wheels"
        files = [simpleindex.wheel(wheels, "relock-demo-a", v) for v in ("1.0", "1.1")]
        with simpleindex.serve({"relock-demo-a": files}, tmp_path / "index") as url:
            monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
            monkeypatch.setenv("PIP_INDEX_URL", url)
            monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
            source = AptSource("/etc/apt/sources.list.d/t.sources", ("deb",),
                               (served.live_url,), ("trixie",), ("main",), {"trusted": "yes"})
            lock = Lock(Input("Dockerfile.in", "a" * 64), Distro("debian", "13", "trixie"),
                        apt_sources=(source,),
                        apt=(AptPackage("hello", "1.0-1", "all", source="hellosrc"),
                             AptPackage("libworld1", "2.0-1", "all", source="world")),
                        python=(PythonEnv("/opt/venv", "3.13",
                                          "/opt/venv/lib/python3.13/site-packages"),),
                        pip=(PipPackage("relock-demo-a", "1.0", "/opt/venv"),))
            lockfile.write(lock, tmp_path / "x.lock")
            osv_dir = write_folder(tmp_path / "osv", [
                record("DEBIAN-CVE-2026-1000", "Debian:13", "hellosrc",
                       events=[{"introduced": "0"}, {"fixed": "1.0-2"}]),
                record("DEBIAN-CVE-2026-1001", "Debian:13", "world",
                       events=[{"introduced": "0"}, {"fixed": "2.0-3"}]),
                record("PYSEC-2026-1000", "PyPI", "relock_demo_A",
                       events=[{"introduced": "0"}, {"fixed": "1.1"}])])
            args = ["audit", "--lock", str(tmp_path / "x.lock"), "--osv", str(osv_dir),
                    "--fixes", "-f", str(tmp_path / "none")]
            r = CliRunner().invoke(cli, args, catch_exceptions=False)
            md = CliRunner().invoke(cli, [*args, "--format", "markdown"],
                                    catch_exceptions=False)
            js = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
            assert any(p.endswith("/InRelease") or p.endswith("/Release")
                       for p in served.requests)
    assert r.exit_code == 1, r.output
    assert r.stdout.splitlines() == [
        "Debian:13  hellosrc 1.0-1 [hello]: DEBIAN-CVE-2026-1000, fixed in 1.0-2; in the "
        "sources now (1.0-2): relock update hello",
        "Debian:13  world 2.0-1 [libworld1]: DEBIAN-CVE-2026-1001, fixed in 2.0-3; not in "
        "the sources yet (nothing newer than the lock's)",
        "PyPI  relock-demo-a 1.0: PYSEC-2026-1000, fixed in 1.1; in the sources now (1.1): "
        "relock update relock-demo-a",
        "3 findings in 3 records (0 withdrawn, skipped); matched in Debian:13, PyPI; 2 "
        "fixable now with relock update"]
    rows = [line for line in md.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 5 and all(row.count(" | ") == 6 for row in rows)
    doc = json.loads(js.stdout)
    assert doc["fix_checked"] is True
    assert [(f["fix_available"], f["update"]) for f in doc["findings"]] == [
        (True, "relock update hello"), (False, None), (True, "relock update relock-demo-a")]


def test_a_source_that_cannot_be_read_is_a_note(tmp_path: Path) -> None:
    from tests.fakes import FakeArchive

    class Down(FakeArchive):
        def candidates(self, *args: Any, **kwargs: Any) -> list[Any]:
            self.warnings.append("http://127.0.0.1:8/debian: cannot read trixie's InRelease")
            return []

    lock = lockfile.read(SMALL)
    report = audit.audit(lock, osv.read_all(write_folder(tmp_path / "osv", RECORDS[:1])))
    checked = audit.check_fixes(report, lock, archive=Down(), index=None)
    assert checked.findings[0].fix_available is False
    assert checked.notes == ("fixes not known: http://127.0.0.1:8/debian: cannot read "
                             "trixie's InRelease",)
    assert checked.notes[0] in audit.format_text(checked)
