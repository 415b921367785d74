# Jupyter server configuration of relock's scientific image (copied to
# /etc/jupyter/ by Dockerfile.in). Command-line options override these, e.g.
# `jupyter lab --ServerApp.port=9999`.
#
# Authentication stays on: no token is set here, so the server takes the one
# in the JUPYTER_TOKEN environment variable if given, and otherwise generates
# a random token at start and prints the URL with it (see `docker logs`).
# Never set an empty token or a password-less login here.
c = get_config()  # type: ignore[name-defined]  # noqa: F821

# Inside a container "localhost" is unreachable from outside: listen on all
# interfaces, on Jupyter's usual port, and publish it with `-p 8888:8888`.
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = 8888
c.ServerApp.port_retries = 0
# There is no browser in the container.
c.ServerApp.open_browser = False
