"""What mdt's commands (its own and plugins') share: path parameters, where a folder given
for a file (or the reverse) is one line naming the option and what to give, not click's
usage block; the recipe argument and ``--set``; the registry; the two consoles."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from mdt.errors import MdtError

console = Console()  # what a command reports
err_console = Console(stderr=True)  # progress and notices, kept out of what a command prints


class GivenPath(click.ParamType):
    """A file or a folder, named: an empty value is refused, where Path("") would be the
    current folder and a command would write into it."""

    name = "path"

    def __init__(self, what: str, wanted: str) -> None:
        self.what, self.wanted = what, wanted

    def convert(self, value, param, ctx) -> Path:
        if isinstance(value, Path):
            return value
        if not str(value).strip():
            raise MdtError(f"{self.what} is empty; give {self.wanted}")
        return Path(value)


class FilePath(GivenPath):
    """A file to read, or to write; it may not exist yet, but it must not be a folder."""

    name = "file"

    def convert(self, value, param, ctx) -> Path:
        path = super().convert(value, param, ctx)
        if path.is_dir():
            raise MdtError(f"{self.what} '{value}' is a folder; give {self.wanted}")
        return path


class FolderPath(GivenPath):
    """A folder to write into; it may not exist yet, but it must not be a file."""

    name = "folder"

    def convert(self, value, param, ctx) -> Path:
        path = super().convert(value, param, ctx)
        if path.exists() and not path.is_dir():
            raise MdtError(f"{self.what} '{value}' is a file; give {self.wanted}")
        return path


RECIPE_FILE = FilePath("recipe", "a recipe file (.toml) or a built-in recipe's name (mdt recipe list)")

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="TABLE.KEY=VALUE",
    help="Override a recipe value (TOML syntax), e.g. --set run.iterations=10. Repeatable.",
)


def registry():
    """Every loaded plugin's components (loaded on first use, so that --help stays fast)."""
    from mdt.plugins import get_registry

    return get_registry()


def checked_recipe(path: str, overrides: tuple[str, ...], components):
    """A checked recipe file; what it spells the old way is said on stderr, once per table."""
    from mdt.recipe import load_recipe

    recipe = load_recipe(path, overrides, components)
    for notice in recipe.notices:
        click.echo(f"notice: {notice}", err=True)
    return recipe
