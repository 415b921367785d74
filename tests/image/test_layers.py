"""Layers read as tar streams into the merged view: whiteouts, opaque folders, links,
history steps, archives of docker save and OCI layouts, and the bounds."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from relock.errors import LayerError, LimitError
from relock.image import layers as lay
from tests.fakes import Member, build_layer, image_archive


def merged(*layers: list[Member | str], limits: lay.Limits = lay.DEFAULT_LIMITS,
           **kw: object) -> lay.ImageFiles:
    archive = image_archive(list(layers), **kw)  # type: ignore[arg-type]
    with lay.archive_layers(io.BytesIO(archive), "img", limits) as found:
        return lay.read_image(found, limits)


def test_the_merged_view_holds_each_path_from_the_layer_that_wrote_it_last() -> None:
    files = merged([Member("etc", kind="dir", mode=0o755), Member("etc/a", b"one"), "etc/b"],
                   [Member("etc/a", b"two", mode=0o600, uid=7, gid=8)])
    a = files.entries["etc/a"]
    assert (a.kind, a.layer, a.mode, a.uid, a.gid, a.size) == ("file", 1, 0o600, 7, 8, 3)
    assert a.sha256 == hashlib.sha256(b"two").hexdigest()
    assert files.entries["etc/b"].layer == 0
    assert files.entries["etc"].kind == "dir"


def test_whiteouts_remove_lower_files_and_folders_and_say_which_layer_did() -> None:
    files = merged([Member("a", kind="dir"), "a/x", "a/y/z", "b", "c"],
                   ["a/.wh.x", "a/.wh.y", ".wh.b"])
    assert set(files.entries) == {"a", "c"}
    assert files.removed_by("a/x") == 1
    assert files.removed_by("a/y/z") == 1  # under a removed folder
    assert files.removed_by("b") == 1
    assert files.removed_by("c") is None


def test_an_opaque_folder_hides_what_lower_layers_put_in_it_but_not_its_own() -> None:
    # The layer's own entry comes before its opaque marker: it must stay.
    files = merged([Member("d", kind="dir"), "d/old", "d/sub/deep", "keep"],
                   ["d/new", "d/.wh..wh..opq"])
    assert set(files.entries) == {"d", "d/new", "keep"}
    assert files.removed_by("d/old") == 1 and files.removed_by("d/sub/deep") == 1


def test_a_whiteout_does_not_remove_what_its_own_layer_adds() -> None:
    files = merged(["x"], ["x", ".wh.x"])
    assert files.entries["x"].layer == 1


def test_a_file_replacing_a_folder_takes_what_was_under_it() -> None:
    files = merged([Member("p", kind="dir"), "p/q"], [Member("p", b"now a file")])
    assert set(files.entries) == {"p"} and files.entries["p"].kind == "file"
    back = merged(["p"], [Member("p", kind="dir"), "p/r"])
    assert set(back.entries) == {"p", "p/r"} and back.entries["p"].kind == "dir"


def test_a_folder_over_a_folder_keeps_its_files_and_takes_the_new_metadata() -> None:
    files = merged([Member("d", kind="dir", mode=0o755), "d/f"],
                   [Member("d", kind="dir", mode=0o700, uid=5)])
    assert files.entries["d"].mode == 0o700 and files.entries["d"].uid == 5
    assert files.entries["d/f"].layer == 0


def test_links_are_kept_as_text_and_hard_links_have_their_targets_content() -> None:
    files = merged([Member("bin/real", b"elf"), Member("bin/hard", kind="hardlink",
                                                         link="bin/real"),
                    Member("bin/soft", kind="symlink", link="/../../etc/shadow"),
                    Member("dev/null", kind="char", mode=0o666), Member("run/p", kind="fifo")])
    hard, soft = files.entries["bin/hard"], files.entries["bin/soft"]
    assert (hard.kind, hard.sha256) == ("file", hashlib.sha256(b"elf").hexdigest())
    assert (soft.kind, soft.link) == ("symlink", "/../../etc/shadow")
    assert files.entries["dev/null"].device == "1,3"
    assert files.entries["run/p"].kind == "fifo"


def test_the_root_entry_and_dot_slash_names_are_read_as_plain_paths() -> None:
    files = merged([Member("./", kind="dir"), Member("./etc/x", b"1"), "/abs"])
    assert set(files.entries) == {"etc/x", "abs"}


@pytest.mark.parametrize("name", ["../escape", "a/../../b", "x/.."])
def test_an_entry_reaching_outside_the_root_is_refused(name: str) -> None:
    with pytest.raises(LayerError, match="outside the image's root"):
        merged([name])


def test_each_layer_is_checked_against_its_diff_id() -> None:
    archive = image_archive([["a"]])
    with lay.archive_layers(io.BytesIO(archive), "img") as found:
        tampered = lay.ImageLayers("img", found.id, (lay.Layer(0, "sha256:" + "0" * 64),),
                                   found.open)
        with pytest.raises(LayerError, match="not the diff ID"):
            lay.read_image(tampered)


def test_plain_and_gzip_layers_and_oci_layouts_read_the_same() -> None:
    layers: list[list[Member | str]] = [["a", Member("b", b"bee")], ["c"]]
    plain = merged(*layers, gzip_layers=False)
    oci = merged(*layers, oci=True)
    zipped = merged(*layers)
    assert plain.entries == oci.entries == zipped.entries
    assert plain.layers[0].digest.startswith("sha256:")


def test_the_steps_come_from_the_history_less_its_empty_layers() -> None:
    files = merged(["a"], ["b"], steps=["/bin/sh -c apt-get install -y x",
                                        "COPY app /app # buildkit"])
    assert [x.step for x in files.layers] == ["/bin/sh -c apt-get install -y x",
                                              "COPY app /app # buildkit"]


def test_a_history_that_does_not_count_the_layers_says_no_step() -> None:
    files = merged(["a"], ["b"], history=[{"created_by": "only one"}])
    assert [x.step for x in files.layers] == ["", ""]


@pytest.mark.parametrize(("created_by", "want"), [
    ("/bin/sh -c date > /etc/build-date", "RUN date > /etc/build-date"),
    ("RUN /bin/sh -c date > /etc/build-date # buildkit", "RUN date > /etc/build-date"),
    ("|2 A=1 B=two words /bin/sh -c make", "RUN make"),
    ("RUN |1 V=3 /bin/sh -c make # buildkit", "RUN make"),
    ('/bin/sh -c #(nop) COPY file:abc in /app ', "COPY file:abc in /app"),
    ("COPY app /app # buildkit", "COPY app /app"),
    ("# debian.sh --arch 'amd64' out/ 'trixie'", "# debian.sh --arch 'amd64' out/ 'trixie'"),
])
def test_a_step_is_read_as_the_templates(created_by: str, want: str) -> None:
    assert lay.step_text(created_by) == want


def test_a_runs_command_is_rewritten_by_the_caller_and_a_long_step_clipped() -> None:
    assert lay.step_text("/bin/sh -c PREFIX; make", lambda c: c.split("; ")[1]) == "RUN make"
    assert len(lay.step_text("/bin/sh -c " + "x" * 10_000)) == lay.MAX_STEP


def test_over_the_decompressed_size_limit_is_refused() -> None:
    with pytest.raises(LimitError, match="layers is over 100000 bytes"):
        merged([Member("big", b"x" * 200_000)], limits=lay.Limits(max_bytes=100_000))


def test_over_the_entry_limit_is_refused() -> None:
    with pytest.raises(LimitError, match="over 10 entries"):
        merged([f"f{i}" for i in range(11)], limits=lay.Limits(max_entries=10))


def test_a_gzip_bomb_stops_at_the_limit_without_holding_it() -> None:
    import tracemalloc

    bomb = gzip.compress(build_layer([Member("zeros", b"\0" * (64 << 20))]), mtime=0)
    found = lay.ImageLayers("img", "sha256:x", (lay.Layer(0, "sha256:" + "1" * 64),),
                            lambda _: _nullcontext(io.BytesIO(bomb)))
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match="layers is over 8 MiB"):
            lay.read_image(found, lay.Limits(max_bytes=8 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bomb) < 1 << 20 and peak < 8 << 20


def _nullcontext(value: io.BytesIO) -> object:
    import contextlib

    return contextlib.nullcontext(value)


def test_a_long_name_is_refused() -> None:
    with pytest.raises(LimitError, match="name is over 100 bytes"):
        merged(["d/" + "n" * 200], limits=lay.Limits(max_name=100))


def test_a_zstd_layer_is_refused_by_name() -> None:
    zstd = b"\x28\xb5\x2f\xfd" + b"\0" * 32
    found = lay.ImageLayers("img", "sha256:x", (lay.Layer(0, "sha256:" + "1" * 64),),
                            lambda _: _nullcontext(io.BytesIO(zstd)))
    with pytest.raises(LayerError, match="zstd"):
        lay.read_image(found)


@pytest.mark.parametrize("blob", [
    gzip.compress(build_layer(["a", "b"]))[:-30],  # cut short
    b"\x1f\x8b" + b"garbage" * 10,
    b"not a tar at all" * 64,
    build_layer(["a"])[:700],
])
def test_a_broken_layer_is_one_layer_error(blob: bytes) -> None:
    found = lay.ImageLayers("img", "sha256:x", (lay.Layer(0, "sha256:" + "1" * 64),),
                            lambda _: _nullcontext(io.BytesIO(blob)))
    with pytest.raises(LayerError, match="img layer 0"):
        lay.read_image(found)


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(("files", "message"), [
    ({"x": b"1"}, "neither manifest.json nor index.json"),
    ({"manifest.json": b"[1, 2]"}, "exactly one image"),
    ({"manifest.json": b"{"}, "not JSON"),
    ({"manifest.json": b'[{"Config": "c", "Layers": []}]'}, "no image config"),
    ({"manifest.json": b'[{"Config": "c", "Layers": []}]', "c": b"[]"}, "not a JSON object"),
    ({"manifest.json": b'[{"Config": "c", "Layers": ["l"]}]', "c": b'{"rootfs": {}}'},
     "no valid rootfs.diff_ids"),
    ({"index.json": b'{"manifests": [{"digest": "md5:1"}]}'}, "not a sha256 digest"),
])
def test_a_broken_archive_is_one_layer_error(files: dict[str, bytes], message: str) -> None:
    with pytest.raises(LayerError, match=message), \
            lay.archive_layers(io.BytesIO(_tar(files)), "img"):
        pass


def test_a_file_that_is_not_a_tar_is_one_layer_error() -> None:
    with pytest.raises(LayerError, match="not a readable image archive"), \
            lay.archive_layers(io.BytesIO(b"\x01" * 2048), "img"):
        pass


def test_a_pax_mtimes_fraction_is_kept_to_the_nanosecond() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mtime in (("a", "1796207566.123456789"), ("b", "1796207566.123456788")):
            info = tarfile.TarInfo(name)
            info.pax_headers = {"mtime": mtime}
            tar.addfile(info, io.BytesIO(b""))
    files = merged([Member("plain", mtime=7)], raw.getvalue())  # type: ignore[list-item]
    assert files.entries["a"].mtime_ns == 1796207566123456789
    assert files.entries["b"].mtime_ns == 1796207566123456788
    assert files.entries["plain"].mtime_ns == 7_000_000_000
