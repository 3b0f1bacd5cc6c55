"""Training's data-root rule (`resolve_media_path`), applied to every path `plait align` opens,
lists, follows or writes: a path resolves under the root, with every symlink followed to its end,
or it is refused. For a streams config the root is the config's folder (`Config.media_root()` is
`base_dir`), so every media path align writes into the sample table is one training accepts.

A path given in the config (a stream table, an image folder, the anchors or labels table, the
media folder) that leads outside is a `ConfigError` naming its key. A path found in a table or a
folder (an audio index entry, a frame) that leads outside is never opened: its row is dropped
and counted as "outside data root" (load.py), so the samples that would use it find it absent.
"""

from __future__ import annotations

from pathlib import Path

from plait.errors import ConfigError

OUTSIDE_ROOT = "outside data root"  # the reason the report gives, in its words


def real_root(root: Path) -> Path:
    """The root with its own symlinks resolved: what every path is compared against."""
    return root.resolve()


def resolve_in_root(path: str | Path, root: Path) -> Path | None:
    """`path` (absolute, or relative to `root`) with every symlink and `..` resolved; None when
    it lies outside the resolved root (or cannot be resolved at all: a symlink loop).
    `root` must already be resolved (`real_root`): callers checking many paths resolve it once."""
    candidate = Path(path)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except (OSError, RuntimeError):  # a symlink loop: nothing to open
        return None
    return resolved if resolved.is_relative_to(root) else None


def inside_root(path: str | Path, root: Path, where: str) -> Path:
    """`path` resolved (symlinks followed), or a ConfigError naming `where` (the config key) when
    it leads outside `root`, the config's folder."""
    base = real_root(root)
    resolved = resolve_in_root(path, base)
    if resolved is not None:
        return resolved
    candidate = Path(path)
    try:
        shown = f"resolves to {(candidate if candidate.is_absolute() else base / candidate).resolve()}"
    except (OSError, RuntimeError):
        shown = "is a symlink loop"
    raise ConfigError(
        f"{where}: '{path}' {shown}, outside the data root {base} (the config's folder: training reads "
        "aligned media only from under it, and so does `plait align`); move the data under that folder "
        "or put the config in a folder that contains the data (a symlink counts where it leads)"
    )


def root_relative(resolved: Path, root: Path) -> str:
    """A resolved path under the resolved `root`, as the POSIX path the sample table holds."""
    return resolved.relative_to(root).as_posix()
