"""`plait cache info|clear`: what the pretrained encoders' embedding cache holds, and emptying it.

The cache lives in $PLAIT_CACHE_DIR (default ~/.cache/plait), bounded by $PLAIT_CACHE_MAX_BYTES
(default 2 GiB, least recently used vectors go first); PLAIT_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import typer

cache_app = typer.Typer(help="The embedding cache of pretrained encoders: info, clear.", no_args_is_help=True)


@cache_app.command("info")
def info_command() -> None:
    """Where the cache is, how full, and what each encoder holds."""
    from plait.pretrained.cache import EmbeddingCache, default_dir, default_max_bytes

    cache = EmbeddingCache.default() or EmbeddingCache(default_dir(), default_max_bytes())
    for line in cache.info().lines():
        print(line)


@cache_app.command("clear")
def clear_command(
    encoder: str | None = typer.Option(
        None, "--encoder", help="Drop only this encoder's vectors (a name `plait cache info` lists)."
    ),
) -> None:
    """Drop the cached vectors (all, or one encoder's); they are recomputed when next needed."""
    from plait.pretrained.cache import EmbeddingCache, default_dir, default_max_bytes

    cache = EmbeddingCache(default_dir(), default_max_bytes())
    dropped = cache.clear(encoder)
    if dropped < 0:
        print(f"{cache.path} could not be read as a cache; removed it (the next run starts a new one)")
        return
    what = f"{encoder}'s" if encoder else "all"
    print(f"dropped {what} {dropped} cached vectors from {cache.path}")
