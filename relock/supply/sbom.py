"""A lock as an SBOM: CycloneDX 1.6 JSON or SPDX 2.3 JSON, byte for byte reproducible.

Everything comes from the lock, nothing from the image: the final image's
APT packages (``pkg:deb``, with their source package and ``.deb`` sha256),
its Python distributions per environment (``pkg:pypi``, with the sha256 of
each file of that version on the index), its base images (``pkg:oci`` by
digest) and the image as the root. The time is the lock's snapshot and the
serial number (CycloneDX) or namespace (SPDX) is derived from the lock's
content, so the same lock gives the same bytes. The formats are written by
their own libraries (cyclonedx-python-lib, spdx-tools), imported only here.
Mapping: docs/supply-chain.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relock import __version__
from relock.errors import RelockError
from relock.lock import reference
from relock.lock.lockfile import Lock, to_toml
from relock.lock.platform import debian_arch

if TYPE_CHECKING:
    from packageurl import PackageURL

FORMATS = ("cyclonedx", "spdx")

# Debian's release numbers by codename, for the purl's ``distro=debian-N``
# qualifier when os-release has no VERSION_ID (testing, unstable).
DEBIAN_RELEASES = {"buzz": "1.1", "rex": "1.2", "bo": "1.3", "hamm": "2.0", "slink": "2.1",
                   "potato": "2.2", "woody": "3.0", "sarge": "3.1", "etch": "4",
                   "lenny": "5", "squeeze": "6", "wheezy": "7", "jessie": "8", "stretch": "9",
                   "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13",
                   "forky": "14", "duke": "15"}

# A UUID namespace of relock's own for serial numbers made from a lock's hash.
_NAMESPACE = uuid.UUID("6f0b9a52-3c1e-5d7a-9a43-0c2b7f6f1e25")
# No snapshot, no time the lock knows: the epoch stands for "unknown".
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


class SbomError(RelockError):
    """An SBOM cannot be made from this lock."""


@dataclass(frozen=True)
class Item:
    """One package of the SBOM, format-neutral: what both writers turn into their own."""

    ref: str  # unique in the document, made of [A-Za-z0-9.-] only
    kind: str  # image, oci, deb, deb-source, python-env, pypi
    name: str
    version: str
    purl: str = ""
    sha256: tuple[str, ...] = ()  # hex digests
    parent: str = ""  # the ref of what contains it ("" for the root)
    source: str = ""  # deb: the ref of its source package
    properties: tuple[tuple[str, str], ...] = ()
    supplier: str = ""  # for a base image: its registry


@dataclass(frozen=True)
class Inventory:
    """What the lock says of one image (one or several platforms), in document order."""

    root: Item
    items: tuple[Item, ...]
    created: datetime
    digest: str  # sha256 hex of the lock's content (its TOML, without the header)
    distro: str = ""  # Debian, Ubuntu, ...: the supplier of the deb packages
    supplier: str = ""  # who supplies the image (and its environments), when told
    platforms: tuple[str, ...] = field(default=())


def release_number(lock: Lock) -> str:
    """The distro's release number (``13``): os-release's VERSION_ID, else the codename's."""
    version = lock.distro.version_id
    if version and version[0].isdigit():
        return version
    if lock.distro.id == "debian":
        return DEBIAN_RELEASES.get(lock.distro.codename, "")
    return ""


def snapshot_time(snapshot: str) -> datetime:
    """``20261126T182731Z`` as a UTC datetime; the epoch when the lock has none."""
    if not snapshot:
        return _NO_TIME
    return datetime.strptime(snapshot, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _id(*words: str) -> str:
    """A document-unique id of SPDX's characters: others (and ``-`` itself) as ``-XX``."""
    out = []
    for w in words:
        out.append("".join(c if c.isascii() and (c.isalnum() or c == ".") else
                           f"-{ord(c):02x}" for c in w))
    return "-".join(out)


def purl(type_: str, name: str, version: str, namespace: str | None = None,
         qualifiers: dict[str, str] | None = None) -> str:
    """A package URL, spelled by packageurl-python."""
    from packageurl import PackageURL

    return str(PackageURL(type=type_, namespace=namespace, name=name, version=version,
                          qualifiers={k: v for k, v in (qualifiers or {}).items() if v} or None))


def parse_purl(text: str) -> PackageURL:
    """``text`` read back by packageurl-python (tests check every purl written parses)."""
    from packageurl import PackageURL

    return PackageURL.from_string(text)


def image_of_header(text: str) -> str:
    """The image a lock's header says it was frozen from (``relock freeze IMAGE``), if
    that is an image reference; "" otherwise (a folder tree, no header, anything odd)."""
    import shlex

    for line in text.splitlines()[:5]:
        if not line.startswith("# Remake it with: relock freeze "):
            continue
        try:
            words = shlex.split(line[len("# Remake it with: "):])
        except ValueError:
            return ""
        image = reference.strip_prefix(words[2]) if len(words) > 2 else ""
        if image.startswith("-"):
            return ""
        try:
            reference.parse(image)
        except RelockError:
            return ""
        return image
    return ""


def inventory(lock: Lock, *, image: str = "", name: str = "image",
              platform: str | None = None, supplier: str = "") -> Inventory:
    """The packages of ``lock``'s final image (``platform``'s part, else every platform's)."""
    parts = ([lock.for_platform(platform)] if platform else
             [lock.for_platform(p) for p in lock.all_platforms])
    digest = hashlib.sha256(to_toml(lock if platform is None else parts[0]).encode()).hexdigest()
    root_name = image or name
    img = reference.split(image) if image else None
    root = Item(ref=_id("image"), kind="image", name=root_name,
                version=(img.tag or img.digest or "latest") if img else "",
                properties=tuple(("relock:platform", p.platform) for p in parts))
    items: list[Item] = []
    distro = lock.distro.id
    release = release_number(lock)
    for part in parts:
        items += _part_items(part.final(), distro, release, root.ref, several=len(parts) > 1)
    return Inventory(root=root, items=tuple(items), created=snapshot_time(lock.snapshot),
                     digest=digest, distro=distro.capitalize() if lock.apt else "",
                     platforms=tuple(p.platform for p in parts), supplier=supplier)


def _part_items(part: Lock, distro: str, release: str, root: str,
                several: bool) -> list[Item]:
    """One platform's base images, APT packages, environments and distributions."""
    plat = part.platform
    tag = (plat.replace("/", "."),) if several else ()
    plat_prop = (("relock:platform", plat),)
    out: list[Item] = []
    for b in part.base:
        digest = b.manifest or b.digest or b.image_id
        r = reference.split(b.ref)
        qualifiers = {"repository_url": r.repository, "tag": r.tag,
                      "arch": debian_arch(plat)}
        last = r.repo.rsplit("/", 1)[-1]
        out.append(Item(ref=_id(*tag, "base", str(b.stage)), kind="oci", name=r.repository,
                        version=digest,
                        purl=purl("oci", last, digest, qualifiers=qualifiers) if b.digest else "",
                        parent=root, supplier=r.host,
                        properties=(*plat_prop, ("relock:stage", str(b.stage)),
                                    ("relock:ref", b.ref))))
    distro_q = f"{distro}-{release}" if release else ""
    sources: dict[tuple[str, str], Item] = {}
    debs: list[Item] = []
    for p in part.apt:
        src_name = p.source or p.name
        src_version = p.source_version or p.version
        src_key = (src_name, src_version)
        if src_key not in sources:
            sources[src_key] = Item(
                ref=_id(*tag, "debsrc", src_name, src_version), kind="deb-source",
                name=src_name, version=src_version,
                purl=purl("deb", src_name, src_version, namespace=distro,
                          qualifiers={"arch": "source", "distro": distro_q}),
                parent=root, properties=plat_prop)
        debs.append(Item(
            ref=_id(*tag, "deb", p.name, p.arch), kind="deb", name=p.name, version=p.version,
            purl=purl("deb", p.name, p.version, namespace=distro,
                      qualifiers={"arch": p.arch, "distro": distro_q}),
            sha256=(p.sha256,) if p.sha256 else (), parent=root,
            source=sources[src_key].ref,
            properties=(*plat_prop, ("relock:deb:source", f"{src_name} {src_version}"),
                        *((("relock:deb:filename", p.filename),) if p.filename else ()))))
    out += debs
    out += sorted(sources.values(), key=lambda i: i.ref)
    for env in part.python:
        env_ref = _id(*tag, "env", env.prefix)
        out.append(Item(ref=env_ref, kind="python-env", name=env.prefix, version=env.python,
                        parent=root,
                        properties=(*plat_prop, ("relock:python:site", env.site),
                                    ("relock:python:venv", "true" if env.venv else "false"))))
        for d in part.pip:
            if d.env != env.prefix or d.kind == "build":  # build requirements: not installed
                continue
            out.append(Item(ref=_id(*tag, "pypi", env.prefix, d.name), kind="pypi",
                            name=d.name, version=d.version, purl=purl("pypi", d.name, d.version),
                            sha256=tuple(h.removeprefix("sha256:") for h in d.hashes),
                            parent=env_ref,
                            properties=(*plat_prop, ("relock:python:env", env.prefix),
                                        ("relock:pip:requested",
                                         "true" if d.requested else "false"))))
    return out


def supplier_of(inv: Inventory, item: Item) -> str:
    """Who distributes ``item``: the distro for its packages, the index for Python's, the
    registry for a base image, ``--supplier`` for the image and its environments."""
    if item.kind in ("deb", "deb-source"):
        return inv.distro
    if item.kind == "pypi":
        return "Python Package Index"
    if item.kind == "oci":
        return item.supplier
    return inv.supplier


# -- CycloneDX ---------------------------------------------------------------

def cyclonedx(inv: Inventory) -> str:
    """CycloneDX 1.6 JSON of ``inv``: nested components for environments, the source
    package as the pedigree ancestor of each deb, dependencies from the root."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType, Pedigree
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.output import make_outputter
    from cyclonedx.output.json import JsonV1Dot6  # noqa: F401 - registers the 1.6 writer
    from cyclonedx.schema import OutputFormat, SchemaVersion

    types = {"image": ComponentType.CONTAINER, "oci": ComponentType.CONTAINER,
             "deb": ComponentType.LIBRARY, "deb-source": ComponentType.LIBRARY,
             "python-env": ComponentType.PLATFORM, "pypi": ComponentType.LIBRARY}
    by_ref = {i.ref: i for i in inv.items}

    def component(item: Item, children: Iterable[Component] = (), ref: str = "") -> Component:
        from packageurl import PackageURL

        # bom-refs are unique in a BOM: each binary's ancestor has its own.
        ancestors = ([component(by_ref[item.source], ref=f"{item.ref}.src")]
                     if item.source else [])
        who = supplier_of(inv, item)
        supplier = OrganizationalEntity(name=who) if who else None
        return Component(
            name=item.name, version=item.version or None, type=types[item.kind],
            bom_ref=ref or item.ref,
            purl=PackageURL.from_string(item.purl) if item.purl else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h) for h in item.sha256],
            properties=[Property(name=k, value=v) for k, v in item.properties],
            pedigree=Pedigree(ancestors=ancestors) if ancestors else None,
            supplier=supplier, components=list(children))

    top = [i for i in inv.items if i.parent == inv.root.ref and i.kind != "deb-source"]
    nested = {i.ref: [component(c) for c in inv.items if c.parent == i.ref]
              for i in inv.items if i.kind == "python-env"}
    root = component(inv.root)
    from cyclonedx.model.tool import ToolRepository

    tools = ToolRepository(components=[Component(name="relock", version=__version__,
                                                 type=ComponentType.APPLICATION)])
    metadata = BomMetaData(component=root, timestamp=inv.created, tools=tools,
                           properties=[Property(name="relock:lock-sha256", value=inv.digest)])
    comps = [component(i, nested.get(i.ref, ())) for i in top]
    bom = Bom(components=comps, metadata=metadata,
              serial_number=uuid.uuid5(_NAMESPACE, f"cyclonedx:{inv.digest}"))
    bom.register_dependency(root, comps)
    for c in comps:
        if c.components:
            bom.register_dependency(c, list(c.components))
    text = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)
    return text + "\n"


# -- SPDX ----------------------------------------------------------------------

def spdx(inv: Inventory) -> str:
    """SPDX 2.3 JSON of ``inv``: the root DESCRIBES, CONTAINS each package, is a
    DESCENDANT_OF its base; each deb GENERATED_FROM its source package."""
    import json

    from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
    from spdx_tools.spdx.model.actor import Actor, ActorType
    from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
    from spdx_tools.spdx.model.document import CreationInfo, Document
    from spdx_tools.spdx.model.package import (
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        PackagePurpose,
    )
    from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
    from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

    purposes = {"image": PackagePurpose.CONTAINER, "oci": PackagePurpose.CONTAINER,
                "deb": PackagePurpose.LIBRARY, "deb-source": PackagePurpose.SOURCE,
                "python-env": PackagePurpose.OTHER, "pypi": PackagePurpose.LIBRARY}
    relock = Actor(ActorType.TOOL, f"relock-{__version__}")

    def supplier(item: Item) -> Actor | SpdxNoAssertion:
        who = supplier_of(inv, item)
        return Actor(ActorType.ORGANIZATION, who) if who else SpdxNoAssertion()

    def package(item: Item) -> Package:
        refs = [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", item.purl)
                ] if item.purl else []
        comment = "; ".join(f"{k}={v}" for k, v in item.properties) or None
        return Package(
            spdx_id=f"SPDXRef-{item.ref}", name=item.name,
            download_location=SpdxNoAssertion(), version=item.version or None,
            supplier=supplier(item), files_analyzed=False,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, h) for h in item.sha256],
            external_references=refs, primary_package_purpose=purposes[item.kind],
            comment=comment)

    info = CreationInfo(
        spdx_version="SPDX-2.3", spdx_id="SPDXRef-DOCUMENT", name=f"relock {inv.root.name}",
        document_namespace=f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'spdx:{inv.digest}')}",
        creators=[relock], created=inv.created,
        creator_comment=f"From a relock lock (sha256 {inv.digest}); time: its APT snapshot")
    root_id = f"SPDXRef-{inv.root.ref}"
    rels = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, root_id)]
    for i in inv.items:
        me = f"SPDXRef-{i.ref}"
        if i.kind == "oci":  # its layers are the image's first ones
            rels.append(Relationship(root_id, RelationshipType.DESCENDANT_OF, me))
        if i.kind != "deb-source":
            rels.append(Relationship(f"SPDXRef-{i.parent}", RelationshipType.CONTAINS, me))
        if i.source:
            rels.append(Relationship(me, RelationshipType.GENERATED_FROM, f"SPDXRef-{i.source}"))
    doc = Document(creation_info=info, packages=[package(inv.root), *map(package, inv.items)],
                   relationships=rels)
    converted = DocumentConverter().convert(doc)  # type: ignore[no-untyped-call]
    return json.dumps(converted, indent=2, ensure_ascii=False) + "\n"


def render(lock: Lock, fmt: str, *, image: str = "", name: str = "image",
           platform: str | None = None, supplier: str = "") -> str:
    """The SBOM of ``lock`` in ``fmt`` (``cyclonedx`` or ``spdx``)."""
    if fmt not in FORMATS:
        raise SbomError(f"unknown SBOM format {fmt!r} (one of {', '.join(FORMATS)})")
    inv = inventory(lock, image=image, name=name, platform=platform, supplier=supplier)
    return cyclonedx(inv) if fmt == "cyclonedx" else spdx(inv)
