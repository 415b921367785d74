"""Plain downloads of a template, named by freeze: the lock cannot hold them."""

from __future__ import annotations

from relock.freeze.downloads import plain_downloads, warnings
from relock.template import dockerfile

ZEROS = "0" * 64
TEMPLATE = f"""\
FROM debian:trixie-slim
RUN apt-get update && apt-get install -y curl \\
 && curl -fsSL https://files.test/tool-1.2.tar.gz -o /tmp/t.tgz && tar xzf /tmp/t.tgz
RUN echo "deb https://mirror.test/debian trixie main" > /etc/apt/sources.list.d/x.list
RUN pip install --index-url https://pypi.test/simple/ six
RUN wget -q -O /opt/model.bin "https://models.test/m.bin"; curl -O https://a.test/1 -O https://a.test/2
ADD --checksum=sha256:{ZEROS} https://files.test/x.tgz /opt/
ADD app.tar.gz /srv/
"""


def test_curl_wget_and_add_urls_are_found_and_nothing_else() -> None:
    found = plain_downloads(dockerfile.parse(TEMPLATE))
    assert found == [
        (2, "RUN", "https://files.test/tool-1.2.tar.gz"),
        (6, "RUN", "https://models.test/m.bin"),
        (6, "RUN", "https://a.test/1"), (6, "RUN", "https://a.test/2"),
        (7, "ADD", "https://files.test/x.tgz"),
    ]


def test_each_is_one_warning_that_says_what_helps() -> None:
    [first, *_] = warnings(dockerfile.parse(TEMPLATE))
    assert first.startswith("Dockerfile.in line 2 downloads https://files.test/tool-1.2.tar.gz "
                            "(RUN): relock locks APT and Python packages, not plain downloads")
    assert first.endswith("put the file in the build context and COPY it")
