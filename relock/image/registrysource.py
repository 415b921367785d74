"""Images read straight from a registry, no engine: relock's second ``ImageSource``.

An image named ``oci://HOST[:PORT]/REPO:TAG`` (or ``@sha256:...``), as stores
are named, is read through ``relock.upstream.registry``: its manifest (an image index
resolves to one platform's manifest), its config (the image ID, layers' diff
IDs, platform, creation time) and its layer blobs. The layers are cached by
digest in relock's blob cache and applied bottom first, whiteouts and all,
into a ``TarFS`` that holds only what the inventory reads. Nothing from the
image is run, and no engine is needed. Docker Hub names are asked of the
registry mirrors given (the engine's, as the engine itself does) first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from relock import bounds
from relock.blobs import BlobCache
from relock.errors import ImageNotFoundError, ImagePlatformError, RegistryError
from relock.image.engine import INVENTORY_PATHS, ImageInfo, parse_created
from relock.image.layers import ImageLayers, Layer, layers_of
from relock.image.rootfs import Readable, RootFS, TarFS
from relock.lock.platform import Platform, descriptor_text, spelled
from relock.lock.reference import Reference, parse, strip_prefix
from relock.upstream import registry as reg

_LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)


class RegistryReader(Protocol):
    """What this source needs of a registry (``relock.upstream.registry.Registry``)."""

    host: str

    def manifest(self, repo: str, ref: str) -> reg.Manifest: ...

    def blob(self, repo: str, digest: str, size: int | None = None) -> reg.VerifiedStream: ...


@dataclass(frozen=True)
class RegistryImage:
    """One platform's image as a registry has it.

    ``digest`` is what the reference's tag (or digest) names: the index's
    digest for a multi-platform image; ``manifest`` the platform's own
    manifest digest, "" when ``digest`` names a single manifest.
    """

    info: ImageInfo
    host: str
    repo: str
    digest: str
    manifest: str
    layers: tuple[tuple[str, str], ...]  # (media type, digest) of each layer blob, bottom first
    steps: tuple[Layer, ...] = ()  # each layer's diff ID, blob digest and history step
    sizes: tuple[int, ...] = ()  # each layer blob's size, as the manifest says


class RegistrySource:
    """``ImageSource`` over registries; one platform's image per reference."""

    def __init__(self, *, mirrors: Sequence[str] = (), cache: BlobCache | None = None,
                 platform: str | None = None,
                 registry_for: Callable[[str], RegistryReader] = reg.registry_for) -> None:
        self.mirrors = tuple(mirrors)
        self.cache = cache if cache is not None else BlobCache()
        self.platform = platform
        self._registry_for = registry_for
        self._held: dict[str, RegistryImage] = {}

    # -- finding --------------------------------------------------------------
    def _top(self, ref: str) -> tuple[RegistryReader, Reference, reg.Manifest]:
        """The registry that answers for ``ref``, the parsed ref, and its manifest."""
        try:
            r = parse(strip_prefix(ref))
        except RegistryError as e:
            raise ImageNotFoundError(str(e)) from None
        asked: list[str] = []
        for host in reg.pull_hosts(r, self.mirrors):
            client = self._registry_for(host)
            try:
                return client, r, client.manifest(r.repo, r.ref)
            except reg.ManifestUnknown:
                asked.append(f"{host}: no such manifest")
            except reg.RegistryUnreachable as e:
                asked.append(str(e))
        raise ImageNotFoundError(f"{strip_prefix(ref)}: not in the registry "
                                 f"({'; '.join(asked)})")

    def digest(self, ref: str) -> str:
        """The digest ``ref``'s tag names in the first registry that has it (an index's, for
        a multi-platform image), as a pull would resolve it."""
        return self._top(ref)[2].digest

    def platforms(self, ref: str) -> list[str]:
        """The platforms ``ref`` has an image for (an index's entries, sorted)."""
        client, r, top = self._top(ref)
        if top.media_type in reg.INDEX_TYPES:
            return sorted({p for p, _ in _entries(top)})
        return [str(self._config(client, r.repo, top)[0].platform)]

    def resolve(self, ref: str, platform: str | None = None) -> RegistryImage:
        """``ref``'s image for ``platform`` (an index must say which, unless it has one)."""
        client, r, top = self._top(ref)
        manifest, picked = top, ""
        platform = platform or self.platform
        platform = None if platform is None else spelled(platform)
        if top.media_type in reg.INDEX_TYPES:
            entries = _entries(top)
            have = sorted({p for p, _ in entries})
            if platform is None:
                if len(have) != 1:
                    raise ImagePlatformError(
                        f"{strip_prefix(ref)} is an image index of {', '.join(have) or 'nothing'}"
                        ": choose one with --platform")
                platform = have[0]
            digest = next((d for p, d in entries if p == platform), "")
            if not digest:
                raise ImagePlatformError(f"{strip_prefix(ref)} has no {platform} image (it "
                                         f"has {', '.join(have) or 'none'})")
            manifest = client.manifest(r.repo, digest)
            if manifest.media_type in reg.INDEX_TYPES:
                raise RegistryError(f"{strip_prefix(ref)}: the {platform} entry is an index, "
                                    "not an image")
            picked = manifest.digest
        info, layers, steps = self._config(client, r.repo, manifest)
        if platform is not None and str(info.platform) != platform:
            raise ImagePlatformError(f"{strip_prefix(ref)} is {info.platform}, not {platform}")
        name = f"{client.host}/{r.repo}"
        info = ImageInfo(id=info.id, layers=info.layers, platform=info.platform,
                         created=info.created, repo_digests=(f"{name}@{top.digest}",))
        image = RegistryImage(info, client.host, r.repo, top.digest, picked,
                              tuple((t, d) for t, d, _ in layers), steps,
                              tuple(n for _, _, n in layers))
        self._held[info.id] = image
        return image

    def _config(self, client: RegistryReader, repo: str, manifest: reg.Manifest
                ) -> tuple[ImageInfo, tuple[tuple[str, str, int], ...], tuple[Layer, ...]]:
        config = manifest.json().get("config")
        if not isinstance(config, dict):
            raise RegistryError(f"{client.host}/{repo}@{manifest.digest}: an image manifest "
                                "without a config")
        digest = reg.check_digest(str(config.get("digest", "")), f"{manifest.digest} config")
        where = f"{client.host}/{repo}@{digest}"
        size = _size(config.get("size"), f"{where}: the config's descriptor")
        if size > bounds.CONFIG:
            raise bounds.too_big(where, f"the image config ({size} bytes)", bounds.CONFIG)
        with client.blob(repo, digest, size) as stream:
            data = stream.read(bounds.CONFIG + 1)
            if len(data) > bounds.CONFIG:
                raise bounds.too_big(where, "the image config", bounds.CONFIG)
            stream.read(-1)  # to the end, where the digest is checked
        cfg = reg.json_object(data, f"{where}: the image config")
        diff_ids = image_diff_ids(cfg, where)
        layers = tuple((str(x.get("mediaType", "")),
                        reg.check_digest(str(x.get("digest", "")), f"{manifest.digest} layer"),
                        _size(x.get("size"), f"{manifest.digest} layer"))
                       for x in manifest.objects("layers"))
        if len(layers) != len(manifest.array("layers")):
            raise RegistryError(f"{client.host}/{repo}@{manifest.digest}: a layer is not a "
                                "descriptor (a JSON object)")
        if len(layers) != len(diff_ids):
            raise RegistryError(f"{client.host}/{repo}@{manifest.digest}: {len(layers)} layers "
                                f"but {len(diff_ids)} diff IDs in the config")
        info = ImageInfo(
            id=digest, layers=tuple(str(d) for d in diff_ids),
            platform=Platform(os=str(cfg.get("os", "linux")),
                              arch=str(cfg.get("architecture", "amd64")),
                              variant=str(cfg.get("variant") or "")),
            created=parse_created(str(cfg.get("created") or "")))
        return info, layers, layers_of(cfg, where, tuple(d for _, d, _ in layers))

    # -- ImageSource ----------------------------------------------------------
    def image(self, ref: str) -> ImageInfo:
        if ref in self._held:
            return self._held[ref].info
        return self.resolve(ref).info

    def images(self) -> list[ImageInfo]:
        """The images this source has resolved (a registry cannot be listed whole)."""
        return [held.info for held in self._held.values()]

    def pull(self, ref: str) -> ImageInfo:
        return self.image(ref)

    def registry_has(self, ref: str) -> bool | None:
        return True  # its images' digests are the registry's own

    @contextlib.contextmanager
    def open_rootfs(self, image: ImageInfo, also: tuple[str, ...] = ()) -> Iterator[RootFS]:
        """The files the inventory reads and those under ``also``, from the layer blobs
        (cached by digest)."""
        held = self._holding(image.id)
        fs = TarFS(keep=INVENTORY_PATHS, also=also)
        for i in range(len(held.layers)):
            with self._layer(held, i) as f:
                try:
                    fs.add_layer(f)
                except (OSError, EOFError, ValueError) as e:
                    raise RegistryError(f"{held.host}/{held.repo}@{held.layers[i][1]}: not a "
                                        f"readable layer tar ({e})") from None
        yield fs

    def image_layers(self, ref: str) -> contextlib.AbstractContextManager[ImageLayers]:
        """``ref``'s layers, each blob read from the cache (fetched into it first)."""
        held = self.resolve(ref)

        def open_layer(i: int) -> contextlib.AbstractContextManager[Readable]:
            return self._layer(held, i)

        return contextlib.nullcontext(
            ImageLayers(strip_prefix(ref), held.info.id, held.steps, open_layer))

    def _holding(self, image_id: str) -> RegistryImage:
        held = self._held.get(image_id)
        if held is None:
            raise ImageNotFoundError(f"image {image_id[:19]} was not found through this source")
        return held

    @contextlib.contextmanager
    def _layer(self, held: RegistryImage, i: int) -> Iterator[Readable]:
        """Layer ``i``'s blob as stored (compressed or not), from the blob cache."""
        media_type, digest = held.layers[i]
        if media_type and media_type not in _LAYER_TYPES:
            raise RegistryError(f"{held.host}/{held.repo}@{digest}: layers of type "
                                f"{media_type} cannot be read")
        path = self.cache.path(digest.removeprefix("sha256:"))
        if path is None:
            client = self._registry_for(held.host)
            size = held.sizes[i] if i < len(held.sizes) else None
            with client.blob(held.repo, digest, size) as stream:
                path = self.cache.put_stream(digest.removeprefix("sha256:"), _chunks(stream),
                                             f"{held.host}/{held.repo}@{digest}")
        with path.open("rb") as f:
            yield f


def _entries(index: reg.Manifest) -> list[tuple[str, str]]:
    """(platform, digest) of each image of an index; attestations and the like left out."""
    out = []
    for entry in index.objects("manifests"):
        text = descriptor_text(entry.get("platform"))
        if "unknown" in text.split("/") or not text:
            continue
        out.append((text, reg.check_digest(str(entry.get("digest", "")),
                                           f"{index.digest} {text}")))
    return out


def image_diff_ids(cfg: dict[str, object], where: str) -> list[str]:
    """The layers' diff IDs an image config lists (``rootfs.diff_ids``), checked to be
    digests; a RegistryError naming ``where`` when the config is not of that shape."""
    rootfs = cfg.get("rootfs")
    if rootfs is None:
        return []
    if not isinstance(rootfs, dict):
        raise RegistryError(f"{where}: the image config's 'rootfs' is not an object")
    diff_ids = rootfs.get("diff_ids")
    if diff_ids is None:
        return []
    if not isinstance(diff_ids, list):
        raise RegistryError(f"{where}: the image config's 'rootfs.diff_ids' is not a list")
    return [reg.check_digest(str(d) if isinstance(d, str) else repr(d),
                             f"{where}: a diff ID") for d in diff_ids]


def _size(value: object, where: str) -> int:
    """A descriptor's ``size``: a byte count, else a RegistryError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RegistryError(f"{where}: size {str(value)!r:.40} is not a byte count")
    return value


def _chunks(stream: reg.VerifiedStream) -> Iterator[bytes]:
    while chunk := stream.read(reg.CHUNK):
        yield chunk

