"""Atomic JSON / JSONL writing and run manifests (git revision, parameters, package versions)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "numpy", "palimpsest")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: str | Path) -> None:
    """Give a file made by `tempfile.mkstemp` (mode 0600) the mode a plain `open` would (0666 & ~umask)."""
    os.chmod(path, 0o666 & ~_umask())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder and an atomic rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """`torch.save(obj)` to `path` atomically, with bytes that depend only on `obj`.

    `torch.save` names the zip's root folder after the file it writes to; saving to a temp file would
    put a random name in every output (and change its DVC hash), so the bytes are made in memory.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def atomic_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield a fresh sibling temp folder; on success it replaces `out_dir` by one rename, else is removed.

    The folder and its files get ordinary modes (0755 / 0644): `mkdtemp` makes them private.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        yield tmp
        for p in [tmp, *tmp.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write `obj` as indented, key-sorted JSON (stable bytes for the same object)."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Atomically write one JSON object per line."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a bad line raises ValueError naming the file and line number."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: line {i + 1}: invalid JSON: {e}") from e
    return rows


def git_revision(cwd: str | Path | None = None) -> str:
    """The current git commit (with '-dirty' when the tree has changes), or 'unknown' outside git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str]:
    """Installed versions of `names` ('absent' when not installed)."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "absent"
    return out


def build_manifest(params: dict[str, Any], *, stable: bool = False, **extra: Any) -> dict[str, Any]:
    """A run manifest: git revision, parameters, package and Python versions, plus `extra` fields.

    `stable=True` leaves out the git revision and the platform string, for manifests inside outputs
    that other DVC stages read: there they would change the output's hash on every commit or machine
    although the content is the same (the run log beside such an output keeps the full manifest).
    """
    run = {} if stable else {"git_revision": git_revision(), "platform": platform.platform()}
    return {
        **run,
        "parameters": params,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        **extra,
    }


def split_timings(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`report` without its timing fields, those fields): top-level keys `seconds`, `*_seconds`, `*_minutes`.

    Outputs that other DVC stages read keep the first part, so equal inputs give an equal hash; the
    second part goes to a run log.
    """
    timed = {k for k in report if k == "seconds" or k.endswith(("_seconds", "_minutes"))}
    return {k: v for k, v in report.items() if k not in timed}, {k: report[k] for k in sorted(timed)}


def write_run_log(path: str | Path | None, params: dict[str, Any], timings: dict[str, Any]) -> None:
    """Write a run log (full manifest + timings) to `path`; nothing when `path` is None."""
    if path is not None:
        write_json(path, {"manifest": build_manifest(params), **timings})


def write_manifest(out_dir: str | Path, params: dict[str, Any], *, stable: bool = False, **extra: Any) -> Path:
    """Write `manifest.json` into `out_dir` and return its path."""
    path = Path(out_dir) / "manifest.json"
    write_json(path, build_manifest(params, stable=stable, **extra))
    return path
