"""The model's own flags of ``mdt translate``, made from its translator's options
(:mod:`mdt.options`): listed under ``--help``, read from the command line, checked
against each other and against the output path."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table as RichTable

from mdt.clitypes import console, err_console
from mdt.errors import MdtError


def print_options(options) -> None:
    table = RichTable("option", "takes", "meaning", title="this model's options")
    for option in options:
        takes = {"labels": "NAME[=VALUE],...", "choice": " | ".join(option.choices), "image": "IMAGE or FOLDER"}.get(
            option.type, option.type
        )
        if option.type in ("int", "float") and (option.minimum is not None or option.maximum is not None):
            takes += f" in [{'' if option.minimum is None else option.minimum}, {'' if option.maximum is None else option.maximum}]"
        where = " (a grid needs it)" if option.needed_by("grid") else "" if option.grid else " (not in a grid)"
        table.add_row(option.cli_flag, escape(takes), escape(option.cli_help + where))
    console.print(table)


def parse_request(options, args: list[str], grid: bool, crop: int, skip_bad_files: bool = False) -> dict:
    """The model's own flags, read from what the generic ones left: --to, --domain, ..."""
    from mdt.translate_files import image_files

    params: list[click.Parameter] = [click.Option([o.cli_flag, o.name], multiple=o.type == "image" and o.many) for o in options]
    parser = click.Command("translate", params=params, add_help_option=False)
    try:
        with parser.make_context("mdt translate", list(args)) as context:
            given = {k: v for k, v in context.params.items() if v not in (None, ())}
    except click.UsageError as exc:
        flags = ", ".join(o.cli_flag for o in options)
        problem = f"no such option: {exc.option_name}" if isinstance(exc, click.NoSuchOption) else exc.format_message().rstrip(".")
        raise MdtError(f"{problem}; this model takes {flags} (mdt translate --checkpoint RUN --help)") from None
    request = {}
    for option in options:
        if option.name not in given:
            continue
        if grid and not option.grid:
            raise MdtError(f"{option.cli_flag} is not for a grid: a grid shows every target")
        value = given[option.name]
        if option.type == "image":
            try:  # a missing or unreadable reference is named as the option's, not as an input
                files = [f for path in (value if option.many else [value]) for f in image_files(Path(path))]
                if len(files) > 1 and not grid:
                    raise MdtError(f"{len(files)} images; translate with one, or add --grid for one column each")
            except MdtError as exc:
                raise MdtError(f"{option.cli_flag}: {exc}") from exc
            request[option.name] = (
                read_pictures(option.cli_flag, files, crop, skip_bad_files)
                if grid
                else read_pictures(option.cli_flag, files, crop, False)[0]
            )
        else:
            request[option.name] = option.parse(value)
    missing = [o for o in options if o.needed_by("grid" if grid else "translate") and o.name not in request]
    if missing:
        raise MdtError(
            f"give {missing[0].cli_flag} ({missing[0].cli_help})" + (": a grid needs it" if grid else ", or --grid for every target")
        )
    return request


def read_pictures(flag: str, files: list[Path], crop: int, skip_bad_files: bool) -> list:
    """The images an image option names; an unreadable one stops the command, or with
    --skip-bad-files (a grid's folder of references) is named and left out."""
    from mdt.translate_files import read_picture

    pictures = []
    for file in files:
        try:
            pictures.append(read_picture(file, crop))
        except MdtError as exc:
            if not skip_bad_files:
                hint = " (--skip-bad-files leaves out such files)" if len(files) > 1 else ""
                raise MdtError(f"{flag}: {exc}{hint}") from exc
            err_console.print(f"skipped: {flag}: {exc}", markup=False, soft_wrap=True)
    if not pictures:
        raise MdtError(f"{flag}: none of its {len(files)} images can be read")
    return pictures


def check_replaced(options, request: dict, varied: str | None) -> None:
    """An option given with the one it takes the place of (``Option.replaces``), or with
    --num varying that one, would be silently unused: refused."""
    for option in options:
        replaced = next((o for o in options if o.name == option.replaces), None)
        if option.name not in request or replaced is None:
            continue
        if replaced.name in request or replaced.name == varied:
            given = replaced.cli_flag if replaced.name in request else f"--num (which varies {replaced.cli_flag})"
            raise MdtError(f"{option.cli_flag} takes the place of {replaced.cli_flag}: give {option.cli_flag} or {given}, not both")


def check_flags(
    input_path: Path | None, output: Path | None, num: int | None, crop: int, batch_size: int, align_faces: bool, landmarks: Path | None
) -> None:
    """mdt translate's own flags, each in its range and fitting the others, before a model is loaded."""
    if input_path is None:
        raise MdtError("give --input")
    if output is None:
        raise MdtError("give --output")
    if num is not None and num < 1:
        raise MdtError(f"--num {num}: give at least 1")
    if crop < 0:
        raise MdtError(f"--crop {crop}: give 0 (the largest centred square) or a size in pixels")
    if batch_size < 1:
        raise MdtError(f"--batch-size {batch_size}: give at least 1")
    if landmarks is not None and not align_faces:
        raise MdtError("--landmarks is for --align: give --align too")
    if align_faces and crop:
        raise MdtError("--align frames the face itself; leave out --crop")


def check_output(input_path: Path, output: Path, grid: bool, num: int, suffix: str = ".png", noun: str = "image") -> None:
    """--output fits what will be written: one file for one input (a ``suffix`` file, the
    model's modality's; a .png for a grid)."""
    suffix = ".png" if grid else suffix
    named = output.suffix.lower() == suffix and not output.is_dir()
    if input_path.is_file() and output.is_dir() and (grid or num == 1):
        raise MdtError(f"--output '{output}' is a folder; a single input {noun} gives one {suffix} file: name it")
    if input_path.is_file() and not named and (grid or num == 1):
        raise MdtError(f"--output '{output}' must be a {suffix} file for a single input {noun}")


def check_output_for_num(output: Path, grid: bool, num: int) -> None:
    """--output is a folder where --num gives each input several images."""
    if not grid and num > 1 and output.suffix and not output.is_dir():
        raise MdtError(f"--output '{output}' must be a folder for --num {num}: each input gets one image per output")
