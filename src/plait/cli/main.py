"""The `plait` command. Parsing only: each command calls one library function.

Heavy libraries (torch, Lightning) are imported inside the commands so `plait --help` is instant.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from plait.cli import align, compare, demo, embed, evaluate, init, predict, search, serve, train
from plait.cli.cache import cache_app
from plait.cli.export import export_command

app = typer.Typer(
    name="plait",
    help="Weave text, images, audio, sensor streams and tables into one model you can trust and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init_command)
app.command("align")(align.align_command)
app.command("train")(train.train_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("predict")(predict.predict_command)
app.command("embed")(embed.embed_command)
app.command("search")(search.search_command)
app.command("demo")(demo.demo_command)
app.command("compare")(compare.compare_command)
app.command("serve")(serve.serve_command)
app.command("export")(export_command)
app.add_typer(cache_app, name="cache")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"plait {version('plait')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """plait: align → check → train → evaluate → serve."""


def main() -> None:
    from plait.errors import PlaitError

    try:
        app()
    except PlaitError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
