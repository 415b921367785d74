"""Freezing a template's build stages, whose installs a pinned build must also see.

A multi-stage template installs packages in stages that never reach the
final image (a compiler in a builder stage, the ``python3-pip`` that performs
a ``--user`` install). The locked view offers only what the lock holds, so
the lock records those too: each stage is built again from the engine's
build cache (``--target``; nothing new runs when the image was built from
the same template and context on this engine) and its files are read like
any image's. A stage's entries list only what the final image does not hold
at the same version: the view needs the union, and the lock stays short.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

from relock.lock.lockfile import Lock
from relock.progress import Progress, quiet
from relock.template.dockerfile import (
    Dockerfile,
    stage_label,
    stages_to_freeze,
    target_name,
    targetable,
)

if TYPE_CHECKING:
    from relock.freeze.freeze import FreezeOptions
    from relock.image.engine import Engine


def freeze_stages(engine: Engine, df: Dockerfile, context: Path, final: Lock,
                  options: FreezeOptions,
                  progress: Progress = quiet) -> Lock:
    """``final`` plus the entries of every build stage that runs something."""
    from relock.build import enginebuild as builder
    from relock.freeze import freeze as fz

    stages = stages_to_freeze(df)
    if not stages:
        return final
    text = targetable(df)
    apt = list(final.apt)
    pip = list(final.pip)
    python = list(final.python)
    have_apt = {(p.name, p.version, p.arch) for p in final.apt}
    have_pip = {(p.env, p.name, p.version) for p in final.pip}
    have_env = {e.prefix for e in final.python}
    for stage in stages:
        label = stage_label(stage)
        progress(f"building stage {label} from the build cache to read what it installed")
        fresh: list[str] = []

        def log(line: str, fresh: list[str] = fresh) -> None:
            # A step run again: the classic builder's "Running in", BuildKit's
            # "#N [stage 2/5] RUN ..." without CACHED.
            if re.match(r"\s*---> Running in ", line) or (
                    re.match(r"#\d+ \[[^]]*\] RUN ", line) and not line.endswith(" CACHED")):
                fresh.append(line)

        result = builder.build(engine, context, None, dockerfile_text=text,
                               build_args=dict(df.build_args), target=target_name(stage),
                               log=log, progress=progress)
        if fresh:
            progress(f"warning: stage {label} was not all in the build cache; it was built "
                     "again, so the lock records that build")
        found = fz.freeze_image(engine, result.image_id, None, options, progress).lock
        for p in found.apt:
            if (p.name, p.version, p.arch) not in have_apt:
                apt.append(dataclasses.replace(p, stage=label))
                have_apt.add((p.name, p.version, p.arch))
        for q in found.pip:
            if (q.env, q.name, q.version) not in have_pip:
                pip.append(dataclasses.replace(q, stage=label))
                have_pip.add((q.env, q.name, q.version))
                if q.env not in have_env:
                    env = next(e for e in found.python if e.prefix == q.env)
                    python.append(dataclasses.replace(env, stage=label))
                    have_env.add(q.env)
    return dataclasses.replace(final, apt=tuple(apt), pip=tuple(pip),
                               python=tuple(python)).sorted()
