"""The project's own scientific image (Dockerfile.in at the repo root), built and run.

Checks what issue 6 asks of it: the stack imports and computes right, JupyterLab
serves its API on loopback only with the token, the processes run as a non-root
user under tini, and the server's config is the one copied into the image.

The image is built once per module with the classic builder and host
networking; every container runs with host networking and is removed at the end.
The engine comes from conftest's ``client`` (skipped without a test bed, failed
in CI).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TAG = "relock-sci:test"
USER = "scientist"
BUILD_TIMEOUT = 1800  # seconds; a cold build downloads ~150 MB of wheels
READY_TIMEOUT = 60  # seconds for JupyterLab to answer /api/status

# Run inside the image: the numbers are checked on the host side.
STACK_SCRIPT = r"""
import io, json
import numpy as np
import scipy
import matplotlib
import pandas as pd
from scipy import integrate, linalg
import matplotlib.pyplot as plt

a = np.array([[3.0, 1.0], [1.0, 2.0]])
b = np.array([9.0, 8.0])
df = pd.DataFrame({"k": ["a", "b", "a", "b", "c"], "v": [1, 2, 3, 4, 5]})

fig, ax = plt.subplots(figsize=(4, 3), dpi=50)
ax.plot([0, 1], [0, 1], color="black", linewidth=3)
buf = io.BytesIO()
fig.savefig(buf, format="png")
png = buf.getvalue()
pixels = plt.imread(io.BytesIO(png))

print(json.dumps({
    "versions": [np.__version__, scipy.__version__, matplotlib.__version__, pd.__version__],
    "backend": matplotlib.get_backend().lower(),
    "numpy_solve": np.linalg.solve(a, b).tolist(),
    "scipy_solve": linalg.solve(a, b).tolist(),
    "quad": integrate.quad(np.sin, 0.0, np.pi)[0],
    "groupby": {k: int(v) for k, v in df.groupby("k")["v"].sum().items()},
    "png_hex": png[:32].hex(),
    "dark_pixels": int((pixels[..., :3] < 0.5).all(axis=-1).sum()),
}))
"""

# A notebook run through a real kernel: matplotlib must draw inline there.
NOTEBOOK_SCRIPT = r"""
import json
import nbclient, nbformat

nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(
    "import matplotlib.pyplot as plt\nimport pandas as pd\n"
    "plt.plot([1, 2, 3])\nplt.show()\nint(pd.Series([1, 2, 3]).sum())"
)]
nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
print(json.dumps([dict(o.get("data", {}), output_type=o.output_type)
                  for o in nb.cells[0].outputs]))
"""


@dataclass
class Server:
    """A JupyterLab container listening on 127.0.0.1:port of the host."""

    container: Any
    url: str
    token: str


@pytest.fixture(scope="module")
def image(client: Any) -> str:
    """Build Dockerfile.in once for this module; the tag of the result."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    cmd = ["docker", "build", "--network", "host", "-t", TAG, "-f", "Dockerfile.in", "."]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(cmd)}` took more than {BUILD_TIMEOUT} s")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        pytest.fail(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{tail}")
    return TAG


def _run(client: Any, image: str, command: list[str], timeout: int = 120,
         **kwargs: Any) -> tuple[int, str, str]:
    """Run a container to its end: (exit code, stdout, stderr); always removed."""
    container = client.containers.run(image, command, network_mode="host", detach=True,
                                      **kwargs)
    try:
        status = container.wait(timeout=timeout)
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        return int(status["StatusCode"]), out, err
    finally:
        container.remove(force=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback: never through a proxy from the environment
    return session


def _logs(container: Any) -> str:
    return str(container.logs().decode("utf-8", "replace"))


def _wait_ready(container: Any, url: str) -> None:
    """Poll ``url/api/status`` until the server answers at all."""
    deadline = time.monotonic() + READY_TIMEOUT
    with _http() as http:
        while time.monotonic() < deadline:
            container.reload()
            if container.status not in ("created", "running"):
                pytest.fail(f"JupyterLab exited ({container.status}):\n{_logs(container)}")
            try:
                http.get(f"{url}/api/status", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.5)
            except requests.Timeout:
                pass
    pytest.fail(f"JupyterLab did not answer on {url} in {READY_TIMEOUT} s:\n{_logs(container)}")


def _start_lab(client: Any, image: str, token: str | None) -> Server:
    port = _free_port()
    env = {"JUPYTER_TOKEN": token} if token is not None else {}
    container = client.containers.run(
        image,
        ["jupyter", "lab", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1"],
        environment=env, network_mode="host", detach=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(container, url)
    except BaseException:
        container.remove(force=True)
        raise
    return Server(container, url, token or "")


@pytest.fixture(scope="module")
def lab(client: Any, image: str) -> Iterator[Server]:
    """JupyterLab with its token from JUPYTER_TOKEN."""
    server = _start_lab(client, image, secrets.token_hex(24))
    try:
        yield server
    finally:
        server.container.remove(force=True)


def _status(url: str, token: str | None = None, query: bool = False) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token is not None and not query else {}
    params = {"token": token} if token is not None and query else {}
    with _http() as http:
        return http.get(f"{url}/api/status", headers=headers, params=params, timeout=10)


# -- the image ------------------------------------------------------------------

def test_image_config(client: Any, image: str) -> None:
    config = client.images.get(image).attrs["Config"]
    assert config["User"] == USER
    assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert config["Cmd"] == ["jupyter", "lab"]
    assert "8888/tcp" in config["ExposedPorts"]
    path = next(e for e in config["Env"] if e.startswith("PATH="))
    assert path.startswith("PATH=/opt/venv/bin:")


def test_scientific_stack_computes(client: Any, image: str) -> None:
    code, out, err = _run(client, image, ["python", "-c", STACK_SCRIPT])
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["backend"] == "agg"
    assert result["numpy_solve"] == pytest.approx([2.0, 3.0])
    assert result["scipy_solve"] == pytest.approx([2.0, 3.0])
    assert result["quad"] == pytest.approx(2.0)
    assert result["groupby"] == {"a": 4, "b": 6, "c": 5}
    png = bytes.fromhex(result["png_hex"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (200, 150)  # 4x3 inches at 50 dpi
    assert result["dark_pixels"] > 100  # the line was drawn


def test_notebook_kernel_draws_inline(client: Any, image: str) -> None:
    code, out, err = _run(client, image, ["python", "-c", NOTEBOOK_SCRIPT])
    assert code == 0, err
    outputs = json.loads(out.strip().splitlines()[-1])
    assert any(o.get("image/png") for o in outputs), outputs
    results = [o for o in outputs if o["output_type"] == "execute_result"]
    assert [o["text/plain"] for o in results] == ["6"]


def test_command_line_tools(client: Any, image: str) -> None:
    script = (
        "for t in git curl less nano ps tini pip; do command -v $t || exit 1; done; "
        "git --version && curl --version | head -n1 && python --version && "
        "test ! -d /var/lib/apt/lists/partial && test -z \"$(ls /var/lib/apt/lists)\""
    )
    code, out, err = _run(client, image, ["bash", "-c", script])
    assert code == 0, out + err
    assert "git version" in out
    assert "/opt/venv/bin/pip" in out


def test_server_config_is_loaded(client: Any, image: str) -> None:
    code, out, err = _run(client, image, ["jupyter", "lab", "--show-config"])
    assert code == 0, err
    text = out + err
    assert "/etc/jupyter/jupyter_server_config.py" in text
    assert ".ip = '0.0.0.0'" in text
    assert ".port = 8888" in text
    # Authentication is left to its defaults: no token or password set in the config.
    shown = text.split("Loaded config files:", 1)[1]
    assert "token" not in shown.lower()
    assert "password" not in shown.lower()


# -- the server -------------------------------------------------------------------

def test_api_answers_with_token(lab: Server) -> None:
    response = _status(lab.url, lab.token)
    assert response.status_code == 200
    assert "started" in response.json()
    assert _status(lab.url, lab.token, query=True).status_code == 200


def test_api_refuses_without_token(lab: Server) -> None:
    assert _status(lab.url).status_code == 403
    assert _status(lab.url, "not-" + lab.token).status_code == 403
    assert _status(lab.url, "").status_code == 403


def test_runs_as_non_root_under_tini(lab: Server) -> None:
    code, out = lab.container.exec_run(["ps", "-e", "-o", "pid=,ppid=,uid=,args="])
    assert code == 0, out
    rows = [line.split(None, 3) for line in out.decode().splitlines() if line.strip()]
    procs = {int(pid): (int(ppid), int(uid), args) for pid, ppid, uid, args in rows}
    assert procs[1][2].startswith("/usr/bin/tini -- jupyter lab")
    jupyter = [pid for pid, (ppid, _, args) in procs.items()
               if ppid == 1 and "jupyter-lab" in args]
    assert jupyter, procs
    assert all(uid == 1000 for _, uid, _ in procs.values()), procs


def test_generated_token_in_logs_and_clean_stop(client: Any, image: str) -> None:
    """Without JUPYTER_TOKEN a random token is made; `docker logs` shows it."""
    server = _start_lab(client, image, None)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"[?&]token=([0-9a-f]{32,})", _logs(server.container))):
            assert time.monotonic() < deadline, _logs(server.container)
            time.sleep(0.5)
        token = found.group(1)
        assert _status(server.url, token).status_code == 200
        assert _status(server.url).status_code == 403
        # tini hands docker stop's SIGTERM on to JupyterLab, which shuts down in time.
        started = time.monotonic()
        server.container.stop(timeout=30)
        assert time.monotonic() - started < 25
        server.container.reload()
        assert server.container.attrs["State"]["ExitCode"] != 137, _logs(server.container)
    finally:
        server.container.remove(force=True)
