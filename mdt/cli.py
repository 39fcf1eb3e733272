"""The ``mdt`` command line. Every user error is one line on stderr and exit code 2;
``mdt --debug ...`` (or ``MDT_DEBUG=1``) shows the traceback instead."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

import mdt
from mdt.clitypes import FilePath, FolderPath
from mdt.errors import MdtError, os_error_line

console = Console()
err_console = Console(stderr=True)


class MdtGroup(click.Group):
    """Turns :class:`MdtError`, a file the system refuses (an output under a file, a
    folder without write permission) and a flag click cannot read into one line and
    exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (MdtError, OSError) as exc:
            if ctx.params.get("debug") or os.environ.get("MDT_DEBUG"):
                raise
            click.echo(f"error: {os_error_line(exc) if isinstance(exc, OSError) else exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:  # a flag's value click cannot read: one line too, not the usage block
            names, inner = [], exc.ctx
            while inner is not None and inner.parent is not None:  # the subcommands, whatever the program is called
                names.insert(0, inner.info_name)
                inner = inner.parent
            where = " ".join(["mdt", *names])
            click.echo(f"error: {exc.format_message().rstrip('.')} ({where} --help)", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=MdtGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(mdt.__version__, prog_name="mdt")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """mdt: multi-domain image-to-image translation, assembled from plugins by TOML recipes."""


def _registry():
    from mdt.plugins import get_registry

    return get_registry()


def _recipe(path: str, overrides: tuple[str, ...], registry):
    """A checked recipe file; what it spells the old way is said on stderr, once per table."""
    from mdt.recipe import load_recipe

    recipe = load_recipe(path, overrides, registry)
    for notice in recipe.notices:
        click.echo(f"notice: {notice}", err=True)
    return recipe


RECIPE_FILE = FilePath("recipe", "a recipe file (.toml)")

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="TABLE.KEY=VALUE",
    help="Override a recipe value (TOML syntax), e.g. --set run.iterations=10. Repeatable.",
)


@main.command()
@click.argument("recipe_path", metavar="RECIPE", type=RECIPE_FILE)
@set_option
@click.option("--out", type=FolderPath("--out", "a folder for the run"), help="Run folder (default: runs/<recipe name>, never reused).")
@click.option("--resume", "resume", is_flag=False, flag_value="", default=None, metavar="[RUN_DIR]",
              help="Continue a run from its newest checkpoint (default: the latest run of this recipe).")
def run(recipe_path: str, overrides: tuple[str, ...], out: Path | None, resume: str | None) -> None:
    """Train with a recipe."""
    from mdt.engine import train
    from mdt.runfolder import latest_run_dir, new_run_dir

    registry = _registry()
    recipe = _recipe(recipe_path, overrides, registry)
    if resume is not None:
        run_dir = Path(resume) if resume else (out or latest_run_dir(recipe_path))
        if run_dir.is_file():
            raise MdtError(f"--resume '{run_dir}' is a file; give the run folder (a run resumes from its newest checkpoint)")
        if not run_dir.exists():
            raise MdtError(f"--resume: run folder '{run_dir}' does not exist")
    else:
        run_dir = out or new_run_dir(recipe_path)
    result = train(recipe, registry, run_dir, resume=resume is not None, console=err_console)
    console.print(f"finished: {result.run_dir} (step {result.step})")


@main.group()
def recipe() -> None:
    """Inspect recipes."""


@recipe.command("show")
@click.argument("recipe_path", metavar="RECIPE", type=RECIPE_FILE)
@set_option
def recipe_show(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Print the resolved recipe (every default written out) as TOML."""
    from mdt.recipe import resolved

    registry = _registry()
    click.echo(resolved(_recipe(recipe_path, overrides, registry), registry).to_toml(), nl=False)


@recipe.command("check")
@click.argument("recipe_path", metavar="RECIPE", type=RECIPE_FILE)
@set_option
def recipe_check(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Check a recipe against the registered components without building anything."""
    from mdt.recipe import missing_package

    registry = _registry()
    recipe_obj = _recipe(recipe_path, overrides, registry)
    missing_package(recipe_obj, registry)
    tables = sum(1 for _ in recipe_obj.tables())
    console.print(f"{recipe_path}: ok ({tables} components)")


@main.command("list")
@click.argument("kind", required=False)
@click.argument("name", required=False)
def list_components(kind: str | None, name: str | None) -> None:
    """List registered components (of one KIND), or show where one is defined (KIND NAME)."""
    import inspect

    from mdt.component import Component
    from mdt.contracts import interface, state_fields
    from mdt.interfaces import Method, Network
    from mdt.recipe import INJECTED, PROVIDED, expected_type, parameters, range_text, role_values, section_of, type_hints, value_text

    registry = _registry()
    if name:
        component = registry.get(kind, name)
        found = registry.find(kind, name)
        console.print(f"[bold]{kind} {name}[/] from plugin [bold]{found['plugin']}[/]")
        console.print(f"defined at {found['file']}:{found['line']}")
        console.print(found["docstring"] or "(no docstring)", markup=False, soft_wrap=True)
        factory = component.factory
        kind_of = (lambda base: inspect.isclass(factory) and issubclass(factory, base))  # noqa: E731
        roles = factory.roles if kind_of(Method) else {}
        injected = {**INJECTED, **role_values(roles)}
        hints = type_hints(component.factory)
        provided = PROVIDED[section_of(kind)]
        for param in parameters(component.factory).values():
            if param.name in INJECTED and param.name not in provided:
                console.print(f"  {param.name}: {INJECTED[param.name]}, which mdt does not provide to a {kind}: "
                              "a recipe cannot build this", markup=False, soft_wrap=True)
            elif param.name in injected:
                limit = range_text(expected_type(param, hints))
                console.print(f"  {param.name}: set by mdt ({injected[param.name]}){'; it must be ' + limit if limit else ''}",
                              markup=False, soft_wrap=True)
            else:
                default = "required" if param.default is param.empty else f"default {param.default!r}"
                allowed = value_text(param, hints)
                console.print(f"  {param.name}: {default}{'; ' + allowed if allowed else ''}", markup=False, soft_wrap=True)
        fits = factory.arguments_problem if kind_of(Component) else None
        if fits is not None and fits is not Component.arguments_problem:  # its docstring says what it checks
            console.print(f"  also checked: {' '.join((inspect.getdoc(fits) or '').split())}", markup=False, soft_wrap=True)
        for label, name in (("takes", "inputs"), ("returns", "outputs")):
            names = interface(factory, name) if kind_of(Network) else None
            if names:
                console.print(f"  {label}: ({', '.join(names)})", markup=False, soft_wrap=True)
        for role_name, role in roles.items():
            article = "an" if role.kind[:1] in "aeiou" else "a"
            console.print(f"  network [networks.{role_name}]: {article} {role.kind} taking ({', '.join(role.inputs)}), read for "
                          f"({', '.join(role.outputs)}){'; the method builds as many as it needs' if role.many else ''}"
                          f"{'; ' + role.description if role.description else ''}", markup=False, soft_wrap=True)
        for phase, state in (factory.phases if kind_of(Method) else {}).items():
            console.print(f"  losses may read in the {phase} phase: {', '.join(state_fields(state))}", markup=False, soft_wrap=True)
        return
    if kind is None:
        kinds = RichTable("kind", "declared by", "what it is", title="kinds")
        for kind_name in registry.kinds:
            declared = registry.kind(kind_name)
            kinds.add_row(kind_name, declared.plugin, escape(declared.description))
        console.print(kinds)
    table = RichTable("name", "kind", "plugin", "description", title="components")
    for component in registry.components(kind):
        table.add_row(component.name, component.kind, component.plugin, escape(component.description))
    console.print(table)


@main.command()
def plugins() -> None:
    """List loaded plugins, their versions and what each registered."""
    from mdt.plugins import AUTOLOAD_ENV, autoload_disabled, default_host

    host = default_host()
    table = RichTable("plugin", "distribution", "version", "registered")
    for info in host.plugins:
        registered = ", ".join([*(f"kind {k.name}" for k in info.kinds), *(f"{c.kind} {c.name}" for c in info.components)]) or "nothing"
        table.add_row(info.name, info.distribution, info.version, registered)
    console.print(table)
    if autoload_disabled():
        console.print(f"{AUTOLOAD_ENV} is set: third-party plugins were not loaded")


def _inputs(path: Path) -> list[Path]:
    from mdt.images import is_image

    if path.is_dir():  # a broken link named like an image is an input that cannot be read, not nothing
        files = sorted(p for p in path.iterdir() if (p.is_file() or p.is_symlink()) and is_image(p))
        if not files:
            raise MdtError(f"input folder '{path}' holds no images")
        return files
    if not path.exists():
        raise MdtError(f"input '{path}' does not exist")
    return [path]


def _read_picture(file: Path, crop: int, aligner=None):
    """An input image, checked here so that a crop too big for it names the file; with
    ``aligner``, framed like the model's training images (mdt.align)."""
    from mdt.images import ImageProblem, check_crop, read_rgb

    try:
        picture = read_rgb(file)
        if aligner is not None:
            return aligner(file, picture)
        check_crop(*picture.size, crop, str(file))
    except ImageProblem as exc:
        raise MdtError(str(exc)) from None
    return picture


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.")
@click.option("--input", "input_path", type=click.Path(path_type=Path), help="Image file or folder of images.")
@click.option("--output", type=click.Path(path_type=Path), help="Output PNG (one input, or one grid) or folder.")
@click.option("--grid", is_flag=True, help="Write a grid: inputs x every target (or x --num outputs, or x every reference).")
@click.option("--num", type=int, help="For a model whose outputs vary (StarGAN v2's --seed): outputs per input, from the option's value on.")
@click.option("--crop", default=0, show_default=True, help="Centre-crop this many pixels before resizing (0: largest square).")
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--batch-size", default=16, show_default=True, help="Images per generator call when translating a folder.")
@click.option("--skip-bad-files", is_flag=True, help="Skip (and name) input and reference images that cannot be read, instead of stopping.")
@click.option("--align", "align_faces", is_flag=True, help="Frame each input like the model's training images (as mdt align does), not the centre square.")
@click.option("--landmarks", type=FilePath("--landmarks", "the landmark network's weights file"), help="With --align: the face-landmark network's weights (wing.ckpt).")
@click.option("-h", "--help", "show_help", is_flag=True, help="Show this help; with --checkpoint, the model's own options too.")
@click.pass_context
def translate(ctx: click.Context, checkpoint: Path | None, input_path: Path | None, output: Path | None, grid: bool, num: int | None,
              crop: int, device: str, overwrite: bool, batch_size: int, skip_bad_files: bool, align_faces: bool, landmarks: Path | None,
              show_help: bool) -> None:
    """Translate images with a trained model. What to ask for comes from the model itself:
    `mdt translate --checkpoint RUN --help` lists its options.

    \b
    StarGAN:    --to Blond_Hair,Male=0 [--from Black_Hair]   (or --grid for every target)
    StarGAN v2: --domain cat --seed 3 [--num 4]     (styles from noise)
                --domain cat --ref cat.png          (the style of a reference)
    With --grid and a folder of inputs, an --output ending in .png gets one grid of all inputs.
    """
    from mdt.inference import load_translator

    if show_help or checkpoint is None:
        if not show_help:
            raise MdtError("give --checkpoint, the run folder or checkpoint file of a trained model")
        click.echo(ctx.get_help())
        if checkpoint is not None:
            _print_options(load_translator(checkpoint, device).options)
        return
    for name, value in (("--input", input_path), ("--output", output)):
        if value is None:
            raise MdtError(f"give {name}")
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
    _check_output(input_path, output, grid, num or 1)
    translator = load_translator(checkpoint, device)
    inner = translator.translator
    if num is not None and num > 1 and not inner.varies:
        raise MdtError(f"--num {num}: this model gives one output per request; its outputs do not vary")
    _check_output_for_num(output, grid, num or 1)  # once --num is known to fit the model: its advice must hold
    aligner = _aligner(translator, landmarks) if align_faces else None
    request = _parse_request(translator.options, ctx.args, grid, crop, skip_bad_files)
    files = _inputs(input_path)
    _check_replaced(translator.options, request, inner.varies if (num or 1) > 1 else None)
    if grid:
        _write_grids(translator, files, input_path, output, request, num, crop, overwrite, aligner, skip_bad_files, batch_size)
    else:
        _write_translations(translator, files, input_path, output, request, num or 1, crop, overwrite, batch_size, skip_bad_files, aligner)


def _aligner(translator, landmarks: Path | None):
    """(file, picture) -> the picture framed like the model's training images."""
    from mdt.align import align, dataset_framing, detector

    registry = _registry()
    framing = dataset_framing(translator.recipe.data, registry)
    if framing is None and landmarks is not None:
        raise MdtError("no dataset of this model says where its faces sit (a framing); --align without --landmarks takes the centre square")
    find = detector(registry, str(landmarks) if landmarks else None, None)

    def framed(file: Path, picture):
        aligned, way = align(picture, framing, translator.image_size, find)
        if find is not None and way != "landmarks":
            err_console.print(f"{file}: no face found; centre crop", markup=False)
        return aligned

    return framed


def _print_options(options) -> None:
    table = RichTable("option", "takes", "meaning", title="this model's options")
    for option in options:
        takes = {"labels": "NAME[=VALUE],...", "choice": " | ".join(option.choices), "image": "IMAGE or FOLDER"}.get(option.type, option.type)
        if option.type in ("int", "float") and (option.minimum is not None or option.maximum is not None):
            takes += f" in [{'' if option.minimum is None else option.minimum}, {'' if option.maximum is None else option.maximum}]"
        where = " (a grid needs it)" if option.needed_by("grid") else "" if option.grid else " (not in a grid)"
        table.add_row(option.cli_flag, escape(takes), escape(option.help + where))
    console.print(table)


def _parse_request(options, args: list[str], grid: bool, crop: int, skip_bad_files: bool = False) -> dict:
    """The model's own flags, read from what the generic ones left: --to, --domain, ..."""
    params = [click.Option([o.cli_flag, o.name], multiple=o.type == "image" and o.many) for o in options]
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
                files = [f for path in (value if option.many else [value]) for f in _inputs(Path(path))]
                if len(files) > 1 and not grid:
                    raise MdtError(f"{len(files)} images; translate with one, or add --grid for one column each")
            except MdtError as exc:
                raise MdtError(f"{option.cli_flag}: {exc}") from exc
            request[option.name] = _read_pictures(option.cli_flag, files, crop, skip_bad_files) if grid \
                else _read_pictures(option.cli_flag, files, crop, False)[0]
        else:
            request[option.name] = option.parse(value)
    missing = [o for o in options if o.needed_by("grid" if grid else "translate") and o.name not in request]
    if missing:
        raise MdtError(f"give {missing[0].cli_flag} ({missing[0].help})" + (": a grid needs it" if grid else ", or --grid for every target"))
    return request


def _read_pictures(flag: str, files: list[Path], crop: int, skip_bad_files: bool) -> list:
    """The images an image option names; an unreadable one stops the command, or with
    --skip-bad-files (a grid's folder of references) is named and left out."""
    pictures = []
    for file in files:
        try:
            pictures.append(_read_picture(file, crop))
        except MdtError as exc:
            if not skip_bad_files:
                hint = " (--skip-bad-files leaves out such files)" if len(files) > 1 else ""
                raise MdtError(f"{flag}: {exc}{hint}") from exc
            err_console.print(f"skipped: {flag}: {exc}", markup=False, soft_wrap=True)
    if not pictures:
        raise MdtError(f"{flag}: none of its {len(files)} images can be read")
    return pictures


def _check_replaced(options, request: dict, varied: str | None) -> None:
    """An option given with the one it takes the place of (``Option.replaces``), or with
    --num varying that one, would be silently unused: refused."""
    for option in options:
        replaced = next((o for o in options if o.name == option.replaces), None)
        if option.name not in request or replaced is None:
            continue
        if replaced.name in request or replaced.name == varied:
            given = replaced.cli_flag if replaced.name in request else f"--num (which varies {replaced.cli_flag})"
            raise MdtError(f"{option.cli_flag} takes the place of {replaced.cli_flag}: give {option.cli_flag} or {given}, not both")


def _check_output(input_path: Path, output: Path, grid: bool, num: int) -> None:
    """--output fits what will be written: a .png for one image or one grid."""
    png = output.suffix.lower() == ".png"
    if input_path.is_file() and not png and (grid or num == 1):
        raise MdtError(f"--output '{output}' must be a .png file for a single input image")


def _check_output_for_num(output: Path, grid: bool, num: int) -> None:
    """--output is a folder where --num gives each input several images."""
    if not grid and num > 1 and output.suffix:
        raise MdtError(f"--output '{output}' must be a folder for --num {num}: each input gets one image per output")


def _fresh_outputs(outputs: list[Path], overwrite: bool, sources: list[Path] | None = None) -> None:
    """Nothing is written unless every output can be: a folder is never replaced, and no
    two inputs (``sources``, one per output) write the same file (a.png and a.jpg)."""
    first: dict[Path, Path] = {}
    for source, output in zip(sources or [], outputs):
        if output in first and first[output] != source:
            raise MdtError(f"inputs '{first[output]}' and '{source}' would both be written to '{output}'; "
                           "rename one, or translate them into different folders")
        first.setdefault(output, source)
    folders = [p for p in outputs if p.is_dir()]
    if folders:
        raise MdtError(f"output '{folders[0]}' is a folder; give another name for the image")
    taken = [p for p in outputs if p.exists()]
    if taken and not overwrite:
        raise MdtError(f"output '{taken[0]}' exists; pass --overwrite to replace it")


def _bad_input(exc: MdtError, written: int, skip: bool, where: Console) -> None:
    """At an unreadable input: stop, saying how many outputs came before it (none is
    ever half-written); or, with --skip-bad-files, name it on ``where`` and go on."""
    if not skip:
        raise MdtError(f"{exc}; {written} output{'s' if written != 1 else ''} written before it, none half-written "
                       "(--skip-bad-files skips such files)") from None
    where.print(f"skipped: {exc}", markup=False, soft_wrap=True)


def _write_grids(translator, files: list[Path], input_path: Path, output: Path, request: dict, num: int | None, crop: int, overwrite: bool,
                 aligner=None, skip_bad_files: bool = False, batch_size: int = 16) -> None:
    """One grid per input into the folder ``output``, or one grid of every input into ``output``.png."""
    from mdt.grids import save_png
    from mdt.images import ImageProblem

    one_grid = output.suffix.lower() == ".png"
    outputs = [output] if one_grid else [output / f"{f.stem}.png" for f in files]
    _fresh_outputs(outputs, overwrite, None if one_grid else files)
    groups = [files] if one_grid else [[f] for f in files]
    written = 0
    for group, target in zip(groups, outputs):
        pictures, names = [], []
        for file in group:
            try:
                pictures.append(_read_picture(file, crop, aligner))
                names.append(file.stem)
            except MdtError as exc:
                _bad_input(exc, written, skip_bad_files, err_console)
        if not pictures:
            continue
        try:  # one grid of a folder names each row's file
            grid = translator.grid(pictures, crop_size=crop, num=num, batch_size=batch_size,
                                   names=names if one_grid and input_path.is_dir() else None, **request)
        except ImageProblem as exc:
            raise MdtError(str(exc)) from None
        save_png(grid, target)
        written += 1
        console.print(f"wrote {target}", markup=False)
    if not written:
        raise MdtError(f"nothing translated: all {len(files)} inputs in '{input_path}' were unreadable")


def _write_translations(translator, files: list[Path], input_path: Path, output: Path, request: dict, num: int, crop: int,
                        overwrite: bool, batch_size: int = 16, skip_bad_files: bool = False, aligner=None) -> None:
    """One image per input and request, ``batch_size`` inputs per generator call; with
    --num, one per value of the varying option, named by the request's choices and that
    value (``dog_cat_5.png``). A file that cannot be read stops here with nothing
    half-written, or is named and skipped with --skip-bad-files."""
    from concurrent.futures import Future, ThreadPoolExecutor
    from typing import Any

    from mdt.grids import save_png
    from mdt.images import ImageProblem

    varies = translator.translator.varies
    requests = [request]
    if num > 1:
        option = next(o for o in translator.options if o.name == varies)
        start = request.get(varies, option.default or 0)
        requests = [{**request, varies: start + k} for k in range(num)]
    single = input_path.is_file() and num == 1

    def name(file: Path, wanted: dict) -> Path:
        if num == 1:
            return output / f"{file.stem}.png"
        choices = [str(wanted[o.name]) for o in translator.options if o.type == "choice" and o.name in wanted]
        return output / ("_".join([file.stem, *choices, str(wanted[varies])]) + ".png")

    targets = {(file, k): output if single else name(file, r) for file in files for k, r in enumerate(requests)}
    _fresh_outputs(list(targets.values()), overwrite, [file for file, _ in targets])
    written, skipped = 0, 0
    chunks = [files[first:first + batch_size] for first in range(0, len(files), batch_size)]

    def read(chunk: list[Path]) -> list[tuple[Path, Any]]:
        """Each file's picture, or the MdtError that reading it raised (reported in order)."""
        pictures = []
        for file in chunk:
            try:
                pictures.append((file, _read_picture(file, crop, aligner)))
            except MdtError as exc:
                pictures.append((file, exc))
        return pictures

    # The next batch is read, and the last one's outputs written, while the generator runs:
    # decoding, encoding and file writes release the GIL. The face aligner runs a network
    # and names files as it goes, so with --align the batches are read in turn.
    ahead = 0 if aligner is not None else 1
    saving: list[tuple[Future, Path]] = []

    def finish_writes() -> None:  # in order, so "wrote" lines and counts stay exact
        nonlocal written
        for future, target in saving:
            future.result()
            written += 1
            if len(targets) <= 20:
                console.print(f"wrote {target}", markup=False, soft_wrap=True)
        saving.clear()

    with _translation_progress(len(files) > 1) as progress, ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        task = progress.add_task("translating", total=len(files))
        reads = [reader.submit(read, chunk) for chunk in chunks[:ahead]]
        for index, chunk in enumerate(chunks):
            batch = reads.pop(0).result() if reads else read(chunk)
            if ahead and index + 1 < len(chunks):
                reads.append(reader.submit(read, chunks[index + 1]))
            readable, pictures = [], []
            for file, picture in batch:
                if isinstance(picture, MdtError):
                    finish_writes()  # the count an error gives is of outputs on disk
                    _bad_input(picture, written, skip_bad_files, progress.console)
                    skipped += 1
                else:
                    readable.append(file)
                    pictures.append(picture)
            results = []  # every request of the batch first: one the model refuses leaves nothing of the batch written
            for wanted in requests:
                try:
                    results.append(translator(pictures, crop_size=crop, **wanted) if pictures else [])
                except ImageProblem as exc:
                    raise MdtError(str(exc)) from None
            finish_writes()  # the previous batch's, written while this one was translated
            for k, outputs in enumerate(results):
                for file, picture in zip(readable, outputs):
                    saving.append((writer.submit(save_png, picture, targets[file, k]), targets[file, k]))
            progress.advance(task, len(chunk))
        finish_writes()
    if not written and skipped:
        raise MdtError(f"nothing translated: all {skipped} inputs in '{input_path}' were unreadable")
    if len(targets) > 20:
        console.print(f"wrote {written} images to {output}" + (f"; skipped {skipped} unreadable" if skipped else ""), markup=False)
    elif skipped:
        console.print(f"skipped {skipped} unreadable", markup=False)


def _translation_progress(shown: bool):
    """A progress bar with an ETA on stderr for a folder; nothing for one image."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn())
    return Progress(*columns, console=err_console, disable=not shown or not err_console.is_terminal)


@main.command("export")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.")
@click.option("--format", "fmt", required=True, help="onnx (for onnxruntime) or torchscript (for torch.jit.load).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="A folder (one file per network the model uses), or a .onnx/.pt file for a one-network model.")
@click.option("--overwrite", is_flag=True, help="Replace files that exist.")
def export_command(checkpoint: Path, fmt: str, out: Path, overwrite: bool) -> None:
    """Export the networks a model translates with, batch size dynamic, labels in the metadata."""
    from mdt.export import export_model

    for path in export_model(checkpoint, out, fmt, overwrite):
        console.print(f"wrote {path}", markup=False, soft_wrap=True)


@main.command("save-pretrained")
@click.argument("source", metavar="RUN_OR_FILE", type=click.Path(path_type=Path))
@click.argument("out", metavar="DIR", type=FolderPath("DIR", "a folder for the model"))
@click.option("--license", "licence", help="The weights' licence as a Hub identifier (mit, apache-2.0, cc-by-nc-4.0, ...); "
              "default: the one an imported checkpoint records, else 'not stated' (other on the Hub).")
@click.option("--overwrite", is_flag=True, help="Replace files already in DIR.")
def save_pretrained_command(source: Path, out: Path, licence: str | None, overwrite: bool) -> None:
    """Write a model folder to share (Hub layout): model.safetensors, recipe, labels,
    a sample grid and a README.md model card with the run's metrics."""
    from mdt.pretrained import save_pretrained

    card = save_pretrained(source, out, licence=licence, overwrite=overwrite,
                           say=lambda line: console.print(line, markup=False, soft_wrap=True))
    console.print(f"wrote {out} (model card: {card})", markup=False, soft_wrap=True)


@main.command("train-classifier")
@click.argument("recipe_path", metavar="RECIPE", type=RECIPE_FILE)
@set_option
@click.option("--out", required=True, type=FolderPath("--out", "a folder for the classifier"), help="Folder for classifier.safetensors.")
@click.option("--max-images", default=1000, show_default=True, help="Held-out images to score it on, per dataset.")
@click.option("--overwrite", is_flag=True, help="Replace a classifier already in --out.")
def train_classifier(recipe_path: str, overrides: tuple[str, ...], out: Path, max_images: int, overwrite: bool) -> None:
    """Train the judge of mdt eval on a recipe's real training images ([classifier]
    table; default a ResNet-18 from scratch) and report its held-out accuracy."""
    from mdt.evaluation import train_judge

    registry = _registry()
    recipe = _recipe(recipe_path, overrides, registry)
    path, accuracy = train_judge(recipe, registry, out, max_images=max_images, overwrite=overwrite, console=err_console)
    table = RichTable("label", "accuracy on real held-out images", title=str(path))
    for key, value in accuracy.items():
        table.add_row(key.removeprefix("real/"), f"{value:.4f}")
    console.print(table)


@main.command("eval")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.")
@click.option("--classifier", type=click.Path(path_type=Path), help="Judge from mdt train-classifier (default: the run's, else trained now).")
@click.option("--out", type=FolderPath("--out", "a folder for the report"), help="Report folder (default: RUN/eval-step_N).")
@click.option("--metric", "metric_names", multiple=True, metavar="NAME", help="Run only this metric (repeatable; default: all that apply).")
@click.option("--max-images", type=int, help="Held-out images per dataset for every metric (default: each metric's own).")
@click.option("--inception", type=FilePath("--inception", "the Inception weights file"),
              help="Inception weights for FID/KID: the file of the protocol's network (docs/evaluation.md).")
@click.option("--fid-protocol", metavar="NAME",
              help="How FID is measured: the 'protocol' of every metric that takes one (mdt list metric fid names them).")
@click.option("--seeds", type=int, help="Measure FID this many times, with other latent codes and references; report mean and spread.")
@click.option("--lpips", type=FilePath("--lpips", "the LPIPS weights file"), help="LPIPS linear weights (the lpips package's weights/v0.1/alex.pth), with --alexnet.")
@click.option("--alexnet", type=FilePath("--alexnet", "the AlexNet weights file"), help="torchvision's AlexNet weights (alexnet-owt-7be5be79.pth), for --lpips.")
@click.option("--compare", multiple=True, type=click.Path(path_type=Path), metavar="RUN",
              help="Another model of the same datasets, measured the same way and shown side by side (repeatable).")
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an earlier report in --out.")
def eval_(checkpoint: Path, classifier: Path | None, out: Path | None, metric_names: tuple[str, ...], max_images: int | None,
          inception: Path | None, fid_protocol: str | None, seeds: int | None, lpips: Path | None, alexnet: Path | None,
          compare: tuple[Path, ...], device: str, overwrite: bool) -> None:
    """Measure a trained model on its held-out images: accuracy of translations (judged
    by a classifier), cycle error, FID/KID per target, and for StarGAN v2 diversity in
    latent and reference modes. Writes metrics.json and a self-contained report.html."""
    from mdt.evaluation import evaluate_checkpoint

    if max_images is not None and max_images < 1:
        raise MdtError(f"--max-images {max_images}: give at least 1")
    if seeds is not None and not 1 <= seeds <= 100:
        raise MdtError(f"--seeds {seeds}: give a number from 1 to 100")
    if alexnet and not lpips:
        raise MdtError("--alexnet is the backbone of LPIPS: give --lpips too")
    if lpips and not alexnet:
        raise MdtError("--lpips needs its backbone: give --alexnet too")
    weights = {k: v for k, v in (("inception", inception), ("lpips", lpips), ("alexnet", alexnet)) if v is not None}
    folder, _ = evaluate_checkpoint(checkpoint, _registry(), out=out, classifier=classifier, weights=weights, metric_names=metric_names,
                                    max_images=max_images, device=device, overwrite=overwrite, console=err_console, compare=compare,
                                    settings={"protocol": ("--fid-protocol", fid_protocol), "seeds": ("--seeds", seeds)})
    console.print(f"wrote {folder / 'metrics.json'} and {folder / 'report.html'}", markup=False, soft_wrap=True)


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Frame like this model's training images (its datasets and image size).")
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), help="Frame like this recipe's training images.")
@click.option("--landmarks", type=FilePath("--landmarks", "the landmark network's weights file"),
              help="Weights of a face-landmark network (StarGAN v2's wing.ckpt for FAN); without it: the centre square.")
@click.option("--detector", help="The registered landmark detector to use (default: the only one).")
@click.option("--size", type=int, help="Output size in pixels (default: the model's or recipe's image size).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--skip-bad-files", is_flag=True, help="Name and skip unreadable images instead of stopping at the first.")
def align(input_path: Path, output: Path, checkpoint: Path | None, recipe_path: Path | None, landmarks: Path | None,
          detector: str | None, size: int | None, overwrite: bool, skip_bad_files: bool) -> None:
    """Crop and align photos (INPUT: an image or a folder) the way a model's training
    images are framed: eyes and mouth where its dataset puts them, found by a landmark
    network; without one (or where it finds no face), the centre square."""
    from mdt.align import align as align_image
    from mdt.align import dataset_framing
    from mdt.align import detector as make_detector
    from mdt.grids import save_png

    if (checkpoint is None) == (recipe_path is None):
        raise MdtError("give --checkpoint (a model) or --recipe (a recipe): whose training images to frame like")
    registry = _registry()
    if checkpoint is not None:
        from mdt.inference import model_recipe, read_model

        file, saved = read_model(checkpoint)
        recipe_obj = model_recipe(file, saved, registry)
    else:
        recipe_obj = _recipe(str(recipe_path), (), registry)
    size = size if size is not None else recipe_obj.run.image_size
    if not 8 <= size <= 4096:
        raise MdtError(f"--size {size}: give a size from 8 to 4096 pixels")
    framing = dataset_framing(recipe_obj.data, registry)
    if framing is None and landmarks is not None:
        raise MdtError("no dataset of this model says where its faces sit (a framing); align without --landmarks for the centre square")
    find = make_detector(registry, str(landmarks) if landmarks else None, detector)
    files = _inputs(input_path)
    targets = [output] if input_path.is_file() else [output / f"{f.stem}.png" for f in files]
    if input_path.is_file() and output.suffix.lower() != ".png":
        raise MdtError(f"OUTPUT '{output}' must be a .png file for a single input image")
    _fresh_outputs(targets, overwrite, files)
    how: dict[str, int] = {}
    for file, target in zip(files, targets):
        try:
            picture = _read_picture(file, 0)
        except MdtError as exc:
            _bad_input(exc, sum(how.values()), skip_bad_files, err_console)
            continue
        picture, way = align_image(picture, framing, size, find)
        save_png(picture, target)
        how[way] = how.get(way, 0) + 1
        if find is not None and way != "landmarks":
            err_console.print(f"{file}: no face found; centre crop", markup=False)
    skipped = len(files) - sum(how.values())
    if not how:
        raise MdtError(f"nothing aligned: all {skipped} inputs in '{input_path}' were unreadable")
    console.print(f"aligned {sum(how.values())} image(s) to {size} px: " + ", ".join(f"{n} by {w}" for w, n in how.items())
                  + (f"; skipped {skipped} unreadable" if skipped else ""), markup=False)


@main.command()
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.")
@click.option("--port", default=7860, show_default=True, help="Port of the local web page.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: reachable from other machines).")
@click.option("--max-file-mb", default=20, show_default=True, help="Largest upload accepted.")
@click.option("--device", default="auto", show_default=True)
def serve(checkpoint: Path, port: int, host: str, max_file_mb: int, device: str) -> None:
    """Try a trained model in the browser: upload an image, choose targets, see and
    download the result (needs the demo extra: pip install -e '.[demo]')."""
    from mdt.serve import serve as run_server

    run_server(checkpoint, host=host, port=port, device=device, max_file_mb=max_file_mb)


class ImporterGroup(click.Group):
    """Subcommands come from the registry's importers, so plugins can add their own."""

    def list_commands(self, ctx):
        return _registry().names("importer")

    def get_command(self, ctx, name):
        if name not in _registry().names("importer"):
            return None
        return _registry().get("importer", name).factory


@main.group("import", cls=ImporterGroup)
def import_() -> None:
    """Convert checkpoints of other implementations (official StarGAN, ...) into mdt checkpoints."""


@main.group()
def checkpoint() -> None:
    """Inspect checkpoints."""


@checkpoint.command("info")
@click.argument("path", type=click.Path(path_type=Path))
def checkpoint_info(path: Path) -> None:
    """Show what a checkpoint holds (PATH: a file, a run or model folder, or a judge's
    folder): a model's step, recipe and labels, or a judge's backbone, labels and
    accuracy; its tensors and their sizes."""
    from mdt import checkpoint as ckpt

    def say(text: str) -> None:
        console.print(text, markup=False, soft_wrap=True)

    file = ckpt.resolve_any(path)
    saved = ckpt.read(file)
    step = f"  step {saved.step}" if saved.content == ckpt.MODEL else ""  # a judge's steps are in its table
    say(f"{file}  {saved.content}{step}  mdt {saved.version}")
    if saved.origin:
        say(f"  imported from {saved.origin}")
    if saved.content == ckpt.MODEL:
        from mdt.inference import model_recipe

        for table in model_recipe(file, saved, _registry()).tables():
            say(f"  [{table.address}] {table.type}")
    else:
        say("  [classifier] " + ", ".join(f"{k}: {v}" for k, v in saved.classifier_table.items()))
        counts = saved.accuracy_images  # a judge written before mdt counted its images: none
        for key, value in saved.accuracy.items():
            on = f"{counts[key]} " if key in counts else ""
            say(f"  accuracy on {on}real held-out images, {key.removeprefix('real/')}: {value:.4f}")
    for schema in saved.schemas:
        say(f"  labels of '{schema.dataset}': {', '.join(schema.names)}")
    groups: dict[str, list[int]] = {}
    for name, tensor in saved.tensors.items():
        head = name.split("/")[0] if not name.startswith(ckpt.TRAINING_PREFIXES) else "/".join(name.split("/")[:2])
        groups.setdefault(head, [0, 0])
        groups[head][0] += 1
        groups[head][1] += tensor.numel()
    table = RichTable("group", "tensors", "elements")
    for head, (count, numel) in groups.items():
        table.add_row(head, str(count), f"{numel:,}")
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
