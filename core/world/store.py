"""Where built worlds live on disk, and building one on demand (smoke notebooks and tests).

`dvc repro` builds the default world as a stage output; a notebook run on the smoke profile calls
`ensure_world`, which builds the world into a temporary sibling folder and renames it into place,
so a half-written world is never read. The folder name encodes every input (profile and seed).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from core.world.build import write_world
from core.world.generate import build_world


def world_dir(root: str | Path, profile: str, seed: int = 0) -> Path:
    """The folder of the world built with `profile` and `seed` under `root` (e.g. data/world)."""
    return Path(root) / (profile if seed == 0 else f"{profile}-seed{seed}")


def ensure_world(root: str | Path, profile: str, seed: int = 0) -> Path:
    """Return `world_dir(root, profile, seed)`, building it first when it is absent."""
    out = world_dir(root, profile, seed)
    if (out / "stats.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write_world(build_world(profile, seed), tmp)
        if out.exists() and not (out / "stats.json").is_file():  # left by an interrupted older build
            shutil.rmtree(out)
        try:
            tmp.rename(out)
        except OSError:  # another process finished the same (deterministic) build first
            if not (out / "stats.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
