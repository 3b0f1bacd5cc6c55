"""Replacing a folder all at once: the new content is written into a temporary sibling, made durable,
then swapped in by renames, so a kill or a full disk leaves either the old folder or the new one —
never new weights beside old JSON.

`replace_folder(target, write, marker="plait.json")`:
1. `write(tmp)` fills `.<name>.tmp-<random>` (same parent, so the renames stay on one filesystem);
2. every file and the folder are fsynced;
3. an existing target is renamed aside (`.<name>.old-<random>`), the new folder renamed into place,
   the old one deleted.
On any error the temporary folder is removed and the old target is left (or put back) as it was.
A target that exists but is neither empty nor holds `marker` is refused: it is someone else's folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from plait.errors import BundleError


def replace_folder(target: Path, write: Callable[[Path], None], *, marker: str) -> None:
    """Write a new folder with `write(tmp)` and swap it in for `target` (created when absent)."""
    target = target.resolve()  # "." has no name to put a sibling beside; a link: replace what it names
    check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(target, "tmp")
    try:
        write(tmp)
        _sync_tree(tmp)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def interrupted_saves(target: Path) -> list[Path]:
    """Folders an interrupted swap left beside `target` (the old content, renamed aside), oldest first."""
    parent = target.parent
    if not parent.is_dir():
        return []
    return sorted((p for p in parent.glob(f".{target.name}.old-*") if p.is_dir()), key=_mtime)


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def check_replaceable(target: Path, marker: str) -> None:
    """`target` is absent, an empty folder, or a folder holding `marker`; anything else is refused."""
    if not target.exists():
        return
    if not target.is_dir():
        raise BundleError(
            f"cannot write a bundle to {target}: it is a file, not a folder; choose another path or "
            "remove the file"
        )
    if _holds_cwd(target):
        raise BundleError(
            f"cannot replace {target}: it holds the current working folder, which a save swaps away; "
            "run from another folder, or name another path"
        )
    if (target / marker).is_file() or not any(target.iterdir()):
        return
    raise BundleError(
        f"refusing to replace {target}: it is a folder that holds files but no {marker}, so it is not "
        "a plait bundle and saving would delete it; choose another path, or empty the folder first"
    )


def _new_sibling(target: Path, tag: str) -> Path:
    """An empty `.<name>.<tag>-<random>` folder beside `target`, with the umask's permissions (not
    mkdtemp's 0700: a served bundle is often read by another user)."""
    while True:
        path = target.with_name(f".{target.name}.{tag}-{secrets.token_hex(4)}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _holds_cwd(target: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the working folder itself is gone
        return False
    return cwd == target.resolve() or target.resolve() in cwd.parents


def _swap(tmp: Path, target: Path) -> None:
    aside: Path | None = None
    if target.exists():
        aside = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        if aside is not None:
            os.rename(aside, target)  # the old folder back where it was
        raise
    _sync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _sync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _sync_dir(folder)


def _sync_dir(folder: Path) -> None:
    """fsync a folder so the names in it (not only the bytes) survive a crash; POSIX only."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
