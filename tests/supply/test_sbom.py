"""relock sbom: CycloneDX 1.6 and SPDX 2.3 from a lock, checked by the formats' own
validators, an independent consumer (ntia-conformance-checker) and golden files."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from relock.cli import cli
from relock.lock import lockfile
from relock.supply import sbom

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "supply"
SMALL = GOLDEN / "small.lock"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def small(fmt: str, *extra: str) -> str:
    code, out, err = run("sbom", "--lock", str(SMALL), "--format", fmt, *extra)
    assert code == 0, err
    return out


def two_platforms() -> lockfile.Lock:
    amd = lockfile.read(SMALL)
    arm = dataclasses.replace(
        amd, platform="linux/arm64",
        apt=tuple(dataclasses.replace(p, arch="arm64", sha256="6" * 64) for p in amd.apt),
        base=tuple(dataclasses.replace(b, digest="sha256:" + "7" * 64) for b in amd.base))
    return amd.with_part(arm)


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx"])
def test_golden(fmt: str) -> None:
    out = small(fmt)
    golden = GOLDEN / f"small.{fmt}.json"
    if os.environ.get("RELOCK_REGOLD"):
        golden.write_text(out)
    assert out == golden.read_text()


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx"])
def test_two_runs_give_the_same_bytes_and_another_lock_another_serial(
        fmt: str, tmp_path: Path) -> None:
    assert small(fmt) == small(fmt)
    other = tmp_path / "other.lock"
    other.write_text(SMALL.read_text().replace('version = "3.10"', 'version = "3.11"'))
    code, out, _ = run("sbom", "--lock", str(other), "--format", fmt)
    ident = ("serialNumber" if fmt == "cyclonedx" else "documentNamespace")
    assert code == 0 and json.loads(out)[ident] != json.loads(small(fmt))[ident]


def test_cyclonedx_validates_against_the_1_6_schema() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    for text in (small("cyclonedx"), sbom.render(two_platforms(), "cyclonedx")):
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    broken = json.loads(small("cyclonedx"))
    broken["components"][0]["type"] = "no-such-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None


def _spdx_messages(text: str, tmp_path: Path) -> list[str]:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "doc.spdx.json"
    path.write_text(text)
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def test_spdx_validates(tmp_path: Path) -> None:
    assert _spdx_messages(small("spdx"), tmp_path) == []
    assert _spdx_messages(sbom.render(two_platforms(), "spdx"), tmp_path) == []
    broken = json.loads(small("spdx"))
    broken["relationships"][0]["relatedSpdxElement"] = "SPDXRef-nothing"
    assert _spdx_messages(json.dumps(broken), tmp_path) != []


def test_spdx_meets_the_ntia_minimum_elements_with_a_supplier(tmp_path: Path) -> None:
    from ntia_conformance_checker import SbomChecker  # type: ignore[import-untyped]

    path = tmp_path / "doc.spdx.json"
    path.write_text(small("spdx", "--supplier", "Example Team"))
    assert SbomChecker(str(path)).compliant
    # Without one, the image's supplier is NOASSERTION, which the checker names.
    path.write_text(small("spdx"))
    assert not SbomChecker(str(path)).compliant


def test_cyclonedx_content() -> None:
    doc = json.loads(small("cyclonedx"))
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["timestamp"].startswith("2026-11-01T12:00:00")
    root = doc["metadata"]["component"]
    assert (root["name"], root["version"], root["type"]) == (
        "registry.example.test/team/sci:1.2", "1.2", "container")
    by_name = {c["name"]: c for c in doc["components"]}
    bash = by_name["bash"]
    assert bash["purl"] == "pkg:deb/debian/bash@5.2.37-2%2Bb5?arch=amd64&distro=debian-13"
    assert bash["hashes"] == [{"alg": "SHA-256", "content": "3" * 64}]
    # A binNMU's source is the version without +bN.
    assert bash["pedigree"]["ancestors"][0]["purl"] == (
        "pkg:deb/debian/bash@5.2.37-2?arch=source&distro=debian-13")
    ssl = by_name["libssl3t64"]
    assert ssl["pedigree"]["ancestors"][0]["name"] == "openssl"
    zlib = by_name["zlib1g"]
    assert "hashes" not in zlib  # the lock has no sha256 for it
    assert zlib["purl"].startswith("pkg:deb/debian/zlib1g@1:1.3.dfsg%2Breally1.3.1-1%2Bb1?")
    base = by_name["docker.io/library/debian"]
    assert base["purl"] == ("pkg:oci/debian@sha256:" + "1" * 64 + "?arch=amd64"
                            "&repository_url=docker.io/library/debian&tag=trixie-slim")
    env = by_name["/opt/venv"]
    assert env["type"] == "platform"
    assert [c["purl"] for c in env["components"]] == ["pkg:pypi/idna@3.10",
                                                     "pkg:pypi/requests@2.32.3"]
    assert "pip-tools" not in json.dumps(doc)  # a build stage's, not in the image
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert set(deps["image"]) == {c["bom-ref"] for c in doc["components"]}
    assert len(deps[env["bom-ref"]]) == 2


def test_spdx_content() -> None:
    doc = json.loads(small("spdx"))
    ids = {p["SPDXID"]: p for p in doc["packages"]}
    name = {p["name"]: p["SPDXID"] for p in doc["packages"]
            if p.get("primaryPackagePurpose") != "SOURCE"}
    rels = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
            for r in doc["relationships"]}
    src = {p["name"]: p["SPDXID"] for p in doc["packages"]
           if p.get("primaryPackagePurpose") == "SOURCE"}
    assert (name["libssl3t64"], "GENERATED_FROM", src["openssl"]) in rels
    assert (name["openssl"], "GENERATED_FROM", src["openssl"]) in rels
    assert ("SPDXRef-image", "DESCENDANT_OF", name["docker.io/library/debian"]) in rels
    assert (name["/opt/venv"], "CONTAINS", name["requests"]) in rels
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-image") in rels
    assert doc["creationInfo"]["created"] == "2026-11-01T12:00:00Z"
    assert ids[name["bash"]]["checksums"] == [{"algorithm": "SHA256",
                                                "checksumValue": "3" * 64}]


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx"])
def test_every_purl_parses_back(fmt: str) -> None:
    from packageurl import PackageURL

    for lock in (lockfile.read(SMALL), two_platforms()):
        text = sbom.render(lock, fmt)
        found = _purls(json.loads(text))
        assert len(found) >= 8
        for p in found:
            parsed = PackageURL.from_string(p)
            assert parsed.to_string() == p
            if parsed.type == "deb":
                assert parsed.qualifiers["distro"] == "debian-13"  # type: ignore[index]


def _purls(doc: object) -> list[str]:
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "purl" or (k == "referenceLocator" and str(v).startswith("pkg:")):
                out.append(v)
            else:
                out += _purls(v)
    elif isinstance(doc, list):
        for v in doc:
            out += _purls(v)
    return out


def test_platform_picks_one_part_and_unknown_platform_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "two.lock"
    lockfile.write(two_platforms(), path)
    code, out, _ = run("sbom", "--lock", str(path), "--format", "cyclonedx",
                       "--platform", "linux/arm64")
    assert code == 0
    archs = {p.partition("arch=")[2].partition("&")[0] for p in _purls(json.loads(out))
             if not p.startswith("pkg:pypi/")}
    assert archs == {"arm64", "source"}
    code, out, err = run("sbom", "--lock", str(path), "--format", "spdx")
    assert code == 0 and {"amd64", "arm64"} <= {
        p.partition("arch=")[2].partition("&")[0] for p in _purls(json.loads(out))}
    code, _, err = run("sbom", "--lock", str(path), "--format", "spdx",
                       "--platform", "linux/s390x")
    assert code == 2 and err.count("\n") == 1 and "no linux/s390x part" in err


@pytest.mark.parametrize(("codename", "version_id", "number"),
                         [("bookworm", "12", "12"), ("trixie", "", "13"), ("forky", "", "14"),
                          ("sid", "", "")])
def test_release_number(codename: str, version_id: str, number: str) -> None:
    lock = lockfile.read(SMALL)
    lock = dataclasses.replace(lock, distro=lockfile.Distro("debian", version_id, codename))
    assert sbom.release_number(lock) == number
    doc = json.loads(sbom.render(lock, "cyclonedx"))
    deb = next(p for p in _purls(doc) if p.startswith("pkg:deb/debian/bash@"))
    assert deb.endswith(f"&distro=debian-{number}") if number else "distro=" not in deb


def test_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    code, stdout, _ = run("sbom", "--lock", str(SMALL), "--format", "spdx", "-o", str(out))
    assert code == 0 and stdout == "" and out.read_text() == small("spdx")


def test_image_of_header() -> None:
    assert sbom.image_of_header(SMALL.read_text()) == "registry.example.test/team/sci:1.2"
    assert sbom.image_of_header("# Remake it with: relock freeze --rootfs /x -o a\n") == ""
    assert sbom.image_of_header("# Remake it with: relock freeze 'a b' -o l\n") == ""
    assert sbom.image_of_header(
        "# Remake it with: relock freeze oci://127.0.0.1:5000/x:1 -o l\n") == (
        "127.0.0.1:5000/x:1")


def test_build_requirements_are_not_components_of_the_image() -> None:
    """They were only in pip's build environment; the project's own package is."""
    lock = lockfile.read(SMALL)
    env = lock.python[0].prefix
    more = dataclasses.replace(lock, pip=(
        *lock.pip, lockfile.PipPackage("myapp", "3.1.1", env, kind="context"),
        lockfile.PipPackage("hatchling", "1.27.0", env, kind="build")))
    names = {i.name for i in sbom.inventory(more).items}
    assert "myapp" in names and "hatchling" not in names
