"""The use case of ``relock freeze``, with build stages.

It takes one request (what the command's options say) and returns what
the CLI prints. ``run_freeze`` is here, not in ``relock.freeze``, because
freezing a template's build stages builds them again from the engine's
build cache, which only this package may do: it is
``relock.freeze.command.run_freeze`` with the engine's stage builder.

A ``relock freeze`` loads this module, so what it imports at the top stays
small (no render, no rebuild, no docker SDK): the rest is imported where it
is used. Nothing here prints or exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from relock.progress import Progress, quiet

if TYPE_CHECKING:
    from relock.freeze.command import FreezeOutcome, FreezeRequest
    from relock.freeze.freeze import FreezeOptions
    from relock.image.engine import ImageSource
    from relock.lock.lockfile import Lock
    from relock.template.dockerfile import Dockerfile


def run_freeze(request: FreezeRequest, progress: Progress = quiet,
               warn: Progress = quiet, *, images: ImageSource | None = None) -> FreezeOutcome:
    """``relock freeze``: ``relock.freeze.command.run_freeze`` reading build stages too."""
    from relock.freeze.command import run_freeze as freeze

    return freeze(request, progress, warn, stages=stages_from_build_cache, images=images)


def stages_from_build_cache(images: ImageSource, dockerfile: Dockerfile, context: Path,
                            final: Lock, options: FreezeOptions, progress: Progress) -> Lock:
    """``final`` plus what the template's build stages installed (a ``StageFreezer``)."""
    from relock.build.stages import freeze_stages as freeze
    from relock.build.stages import stages_to_freeze

    if not stages_to_freeze(dockerfile):
        return final
    from relock.image.enginefiles import sdk_engine

    return freeze(sdk_engine(images), dockerfile, context, final, options, progress)
