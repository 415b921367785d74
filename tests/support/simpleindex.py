"""Tiny wheels, and a loopback PEP 503 simple index that serves only the files given."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import http.server
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def wheel(folder: Path, name: str, version: str, requires: Sequence[str] = ()) -> Path:
    """A pure-Python wheel of ``name`` ``version`` in ``folder``, reproducible byte for byte."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{module}/__init__.py": f"VERSION = {version!r}\n", f"{info}/METADATA": meta,
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: relock-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{path},sha256={digest.rstrip(b'=').decode()},{len(text.encode())}\n")
    files[f"{info}/RECORD"] = "".join(record) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def serve(files: dict[str, Sequence[Path]], root: Path) -> Iterator[str]:
    """A simple index on 127.0.0.1 of ``files`` by project name; yields its URL."""
    site = root / "site"
    for project, paths in files.items():
        page = site / "simple" / project
        page.mkdir(parents=True, exist_ok=True)
        links = []
        for p in paths:
            (site / "files").mkdir(exist_ok=True)
            (site / "files" / p.name).write_bytes(p.read_bytes())
            links.append(f'<a href="../../files/{html.escape(p.name)}#sha256={sha256(p)}" '
                         f'data-requires-python="&gt;=3.8">{html.escape(p.name)}</a>')
        (page / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(site), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
