"""Path parameters for commands (mdt's own and plugins'): a folder where a file is wanted,
or the reverse, is one line naming the option and what to give, not click's usage block."""

from __future__ import annotations

from pathlib import Path

import click

from mdt.errors import MdtError


class FilePath(click.ParamType):
    """A file to read, or to write; it may not exist yet, but it must not be a folder."""

    name = "file"

    def __init__(self, what: str, wanted: str) -> None:
        self.what, self.wanted = what, wanted

    def convert(self, value, param, ctx) -> Path:
        path = Path(value)
        if path.is_dir():
            raise MdtError(f"{self.what} '{value}' is a folder; give {self.wanted}")
        return path


class FolderPath(click.ParamType):
    """A folder to write into; it may not exist yet, but it must not be a file."""

    name = "folder"

    def __init__(self, what: str, wanted: str) -> None:
        self.what, self.wanted = what, wanted

    def convert(self, value, param, ctx) -> Path:
        path = Path(value)
        if path.exists() and not path.is_dir():
            raise MdtError(f"{self.what} '{value}' is a file; give {self.wanted}")
        return path
