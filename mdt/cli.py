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


RECIPE_FILE = FilePath("recipe", "a recipe file (.toml) or a built-in recipe's name (mdt recipe list)")

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
    """Inspect recipes: a file, or a built-in recipe by name (mdt recipe list)."""


@recipe.command("list")
def recipe_list() -> None:
    """The built-in recipes, installed with mdt: each runs by name (mdt run quickstart)."""
    from mdt.recipe import builtin_recipes, recipe_summary

    table = RichTable("recipe", "what it trains", title="built-in recipes")
    for name, entry in builtin_recipes().items():
        table.add_row(name, escape(recipe_summary(entry.read_text(encoding="utf-8"))))
    console.print(table)


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
    from mdt.describe import component_lines

    registry = _registry()
    if name:
        found = registry.find(kind, name)
        console.print(f"[bold]{kind} {name}[/] from plugin [bold]{found['plugin']}[/]")
        for line in component_lines(registry, kind, name):
            console.print(line, markup=False, soft_wrap=True)
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
    from mdt.translate_files import Job, image_files, write_grids, write_translations
    from mdt.translate_flags import check_output, check_output_for_num, check_replaced, parse_request, print_options

    if show_help or checkpoint is None:
        if not show_help:
            raise MdtError("give --checkpoint, the run folder or checkpoint file of a trained model")
        click.echo(ctx.get_help())
        if checkpoint is not None:
            print_options(load_translator(checkpoint, device).options)
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
    check_output(input_path, output, grid, num or 1)
    translator = load_translator(checkpoint, device)
    inner = translator.translator
    if num is not None and num > 1 and not inner.varies:
        raise MdtError(f"--num {num}: this model gives one output per request; its outputs do not vary")
    check_output_for_num(output, grid, num or 1)  # once --num is known to fit the model: its advice must hold
    aligner = None
    if align_faces:
        from mdt.align import framer

        aligner = framer(translator.recipe.data, _registry(), translator.image_size, landmarks, err_console)
    request = parse_request(translator.options, ctx.args, grid, crop, skip_bad_files)
    files = image_files(input_path)
    check_replaced(translator.options, request, inner.varies if (num or 1) > 1 else None)
    job = Job(translator, files, input_path, output, request, num=num, crop=crop, overwrite=overwrite, batch_size=batch_size,
              skip_bad_files=skip_bad_files, aligner=aligner, out=console, err=err_console)
    write_grids(job) if grid else write_translations(job)


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
    from mdt.measure import train_judge

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
    from mdt.measure import evaluate_checkpoint

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
    from mdt.align import align_files

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
    how, skipped = align_files(input_path, output, recipe_obj.data, registry, size, landmarks, detector, overwrite, skip_bad_files,
                               err_console)
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
    download the result (needs Gradio, the demo extra)."""
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
    from mdt.describe import checkpoint_lines, tensor_groups
    from mdt.hub import local

    saved, lines = checkpoint_lines(local(path), _registry())
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)
    groups = tensor_groups(saved)
    table = RichTable("group", "tensors", "elements")
    for head, (count, numel) in groups.items():
        table.add_row(head, str(count), f"{numel:,}")
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
