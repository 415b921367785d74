"""``python -m relock``: the same as the ``relock`` command."""

from relock.cli import main

main()
