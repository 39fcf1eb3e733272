"""The ``mdt`` command line (the commands that use a trained model are in mdt.cli_model). Every user error is one line on stderr and exit code 2;
``mdt --debug ...`` (or ``MDT_DEBUG=1``) shows the traceback instead."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table as RichTable

import mdt
from mdt.cli_model import MODEL_COMMANDS
from mdt.clitypes import RECIPE_FILE, FilePath, FolderPath, checked_recipe, console, err_console, set_option
from mdt.clitypes import registry as _registry
from mdt.errors import MdtError, os_error_line


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
            names: list[str] = []
            inner = exc.ctx
            while inner is not None and inner.parent is not None:  # the subcommands, whatever the program is called
                names.insert(0, inner.info_name or "")  # click names every subcommand's context
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


@main.command()
@click.argument("recipe_path", metavar="RECIPE", type=RECIPE_FILE)
@set_option
@click.option("--out", type=FolderPath("--out", "a folder for the run"), help="Run folder (default: runs/<recipe name>, never reused).")
@click.option(
    "--resume",
    "resume",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[RUN_DIR]",
    help="Continue a run from its newest checkpoint (default: the latest run of this recipe).",
)
def run(recipe_path: str, overrides: tuple[str, ...], out: Path | None, resume: str | None) -> None:
    """Train with a recipe."""
    from mdt.engine import train
    from mdt.runfolder import latest_run_dir, new_run_dir

    registry = _registry()
    recipe = checked_recipe(recipe_path, overrides, registry)
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
    click.echo(resolved(checked_recipe(recipe_path, overrides, registry), registry).to_toml(), nl=False)


@recipe.command("check")
@click.argument("recipe_path", metavar="RECIPE", type=RECIPE_FILE)
@set_option
def recipe_check(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Check a recipe against the registered components, and run its networks on the
    datasets' samples on torch's meta device (no weights allocated, nothing trained)."""
    from mdt.build import build_loggers, check_networks_run
    from mdt.recipe import missing_package

    registry = _registry()
    recipe_obj = checked_recipe(recipe_path, overrides, registry)
    missing_package(recipe_obj, registry)
    build_loggers(recipe_obj, registry, err_console)  # built, not opened: two writing to one place are refused
    not_run = check_networks_run(recipe_obj, registry)
    tables = sum(1 for _ in recipe_obj.tables())
    console.print(f"{recipe_path}: ok ({tables} components)", markup=False, soft_wrap=True)
    if not_run:
        console.print(f"networks not run on the samples: {not_run}", markup=False, soft_wrap=True)


@main.command("list")
@click.argument("kind", required=False)
@click.argument("name", required=False)
def list_components(kind: str | None, name: str | None) -> None:
    """List registered components (of one KIND), or show where one is defined (KIND NAME)."""
    from mdt.describe import component_lines

    registry = _registry()
    if kind is not None and name:  # NAME comes after KIND: given, KIND is too
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
    recipe = checked_recipe(recipe_path, overrides, registry)
    path, accuracy = train_judge(recipe, registry, out, max_images=max_images, overwrite=overwrite, console=err_console)
    table = RichTable("label", "accuracy on real held-out images", title=str(path))
    for key, value in accuracy.items():
        table.add_row(key.removeprefix("real/"), f"{value:.4f}")
    console.print(table)


@main.command("eval")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.",
)
@click.option(
    "--classifier", type=click.Path(path_type=Path), help="Judge from mdt train-classifier (default: the run's, else trained now)."
)
@click.option("--out", type=FolderPath("--out", "a folder for the report"), help="Report folder (default: RUN/eval-step_N).")
@click.option("--metric", "metric_names", multiple=True, metavar="NAME", help="Run only this metric (repeatable; default: all that apply).")
@click.option("--max-images", type=int, help="Held-out images per dataset for every metric (default: each metric's own).")
@click.option(
    "--inception",
    type=FilePath("--inception", "the Inception weights file"),
    help="Inception weights for FID/KID: the file of the protocol's network (docs/evaluation.md).",
)
@click.option(
    "--unverified-weights",
    is_flag=True,
    help="Measure with an --inception file whose SHA-256 is not its protocol's published one; the results say 'unverified weights'.",
)
@click.option(
    "--fid-protocol",
    metavar="NAME",
    help="How FID is measured: the 'protocol' of every metric that takes one (mdt list metric fid names them).",
)
@click.option("--seeds", type=int, help="Measure FID this many times, with other latent codes and references; report mean and spread.")
@click.option(
    "--lpips",
    type=FilePath("--lpips", "the LPIPS weights file"),
    help="LPIPS linear weights (the lpips package's weights/v0.1/alex.pth), with --alexnet.",
)
@click.option(
    "--alexnet",
    type=FilePath("--alexnet", "the AlexNet weights file"),
    help="torchvision's AlexNet weights (alexnet-owt-7be5be79.pth), for --lpips.",
)
@click.option(
    "--compare",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="RUN",
    help="Another model of the same datasets, measured the same way and shown side by side (repeatable).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an earlier report in --out.")
def eval_(
    checkpoint: Path,
    classifier: Path | None,
    out: Path | None,
    metric_names: tuple[str, ...],
    max_images: int | None,
    inception: Path | None,
    unverified_weights: bool,
    fid_protocol: str | None,
    seeds: int | None,
    lpips: Path | None,
    alexnet: Path | None,
    compare: tuple[Path, ...],
    device: str,
    overwrite: bool,
) -> None:
    """Measure a trained model on its held-out images: accuracy of translations (judged
    by a classifier), cycle error, FID/KID per target, and for StarGAN v2 diversity in
    latent and reference modes. Writes metrics.json and a self-contained report.html."""
    from mdt.measure import evaluate_checkpoint

    if max_images is not None and max_images < 1:
        raise MdtError(f"--max-images {max_images}: give at least 1")
    if seeds is not None and not 1 <= seeds <= 100:
        raise MdtError(f"--seeds {seeds}: give a number from 1 to 100")
    if unverified_weights and not inception:
        raise MdtError("--unverified-weights accepts an --inception file that is not the published one: give --inception too")
    if alexnet and not lpips:
        raise MdtError("--alexnet is the backbone of LPIPS: give --lpips too")
    if lpips and not alexnet:
        raise MdtError("--lpips needs its backbone: give --alexnet too")
    weights = {k: v for k, v in (("inception", inception), ("lpips", lpips), ("alexnet", alexnet)) if v is not None}
    folder, _ = evaluate_checkpoint(
        checkpoint,
        _registry(),
        out=out,
        classifier=classifier,
        weights=weights,
        metric_names=metric_names,
        max_images=max_images,
        device=device,
        overwrite=overwrite,
        console=err_console,
        compare=compare,
        settings={
            "protocol": ("--fid-protocol", fid_protocol),
            "seeds": ("--seeds", seeds),
            "unverified_weights": ("--unverified-weights", unverified_weights or None),
        },
    )
    console.print(f"wrote {folder / 'metrics.json'} and {folder / 'report.html'}", markup=False, soft_wrap=True)


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


for _command in MODEL_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
