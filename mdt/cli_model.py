"""The commands that use a trained model: translate, align, serve, export and
save-pretrained (mdt.cli adds them to ``mdt``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from mdt.clitypes import FilePath, FolderPath, GivenPath, checked_recipe, console, err_console
from mdt.clitypes import registry as _registry
from mdt.errors import MdtError


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.",
)
@click.option(
    "--input", "input_path", type=GivenPath("--input", "an image file or a folder of images"), help="Image file or folder of images."
)
@click.option(
    "--output", type=GivenPath("--output", "a .png file or a folder for the results"), help="Output PNG (one input, or one grid) or folder."
)
@click.option("--grid", is_flag=True, help="Write a grid: inputs x every target (or x --num outputs, or x every reference).")
@click.option(
    "--num", type=int, help="For a model whose outputs vary (StarGAN v2's --seed): outputs per input, from the option's value on."
)
@click.option("--crop", default=0, show_default=True, help="Centre-crop this many pixels before resizing (0: largest square).")
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--batch-size", default=16, show_default=True, help="Images per generator call when translating a folder.")
@click.option("--skip-bad-files", is_flag=True, help="Skip (and name) input and reference images that cannot be read, instead of stopping.")
@click.option(
    "--align",
    "align_faces",
    is_flag=True,
    help="Frame each input like the model's training images (as mdt align does), not the centre square.",
)
@click.option(
    "--landmarks",
    type=FilePath("--landmarks", "the landmark network's weights file"),
    help="With --align: the face-landmark network's weights (wing.ckpt).",
)
@click.option("-h", "--help", "show_help", is_flag=True, help="Show this help; with --checkpoint, the model's own options too.")
@click.pass_context
def translate(
    ctx: click.Context,
    checkpoint: Path | None,
    input_path: Path | None,
    output: Path | None,
    grid: bool,
    num: int | None,
    crop: int,
    device: str,
    overwrite: bool,
    batch_size: int,
    skip_bad_files: bool,
    align_faces: bool,
    landmarks: Path | None,
    show_help: bool,
) -> None:
    """Translate images with a trained model. What to ask for comes from the model itself:
    `mdt translate --checkpoint RUN --help` lists its options.

    \b
    StarGAN:    --to Blond_Hair,Male=0 [--from Black_Hair]   (or --grid for every target)
    StarGAN v2: --domain cat --seed 3 [--num 4]     (styles from noise)
                --domain cat --ref cat.png          (the style of a reference)
    With --grid and a folder of inputs, an --output ending in .png gets one grid of all inputs.
    """
    from mdt.inference import load_translator
    from mdt.translate_files import Job, input_files
    from mdt.translate_flags import check_flags, check_output, check_output_for_num, check_replaced, parse_request

    if show_help or checkpoint is None:
        return _help(ctx, checkpoint, device, show_help)
    check_flags(input_path, output, num, crop, batch_size, align_faces, landmarks)
    assert input_path is not None and output is not None, "check_flags asks for both"
    translator = load_translator(checkpoint, device)
    modality = translator.modality
    check_output(input_path, output, grid, num or 1, modality.output_suffix, modality.noun)
    varies = translator.translator.varies
    if num is not None and num > 1 and not varies:
        raise MdtError(f"--num {num}: this model gives one output per request; its outputs do not vary")
    check_output_for_num(output, grid, num or 1)  # once --num is known to fit the model: its advice must hold
    aligner = _framer(translator, landmarks) if align_faces else None
    request = parse_request(translator.options, ctx.args, grid, crop, skip_bad_files)
    check_replaced(translator.options, request, varies if (num or 1) > 1 else None)
    job = Job(
        translator,
        input_files(input_path, modality.suffixes, f"{modality.noun}s"),
        input_path,
        output,
        request,
        num=num,
        crop=crop,
        overwrite=overwrite,
        batch_size=batch_size,
        skip_bad_files=skip_bad_files,
        aligner=aligner,
        out=console,
        err=err_console,
    )
    _write(job, grid, translator)


def _write(job, grid: bool, translator) -> None:
    """Translate and write; files of a folder that are not pictures, and inputs resized to
    the model's size, are said once, in lines of mdt's rather than as Python warnings."""
    from mdt.inference import ResizeNotice
    from mdt.translate_files import left_out, write_grids, write_translations

    modality = translator.modality
    if note := left_out(job.input_path, modality.suffixes, f"{modality.noun}s"):
        err_console.print(f"note: {note}", markup=False, soft_wrap=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResizeNotice)
        write_grids(job) if grid else write_translations(job)
    if translator.resized:
        height, width = translator.sample.height, translator.sample.width
        note = f"note: inputs were centre-cropped and resized to the model's {width} x {height} px; so are the outputs"
        err_console.print(note, markup=False, soft_wrap=True)


def _help(ctx: click.Context, checkpoint: Path | None, device: str, asked: bool) -> None:
    """The command's help; with --checkpoint, the model's own options after it."""
    from mdt.inference import load_translator
    from mdt.translate_flags import print_options

    if not asked:
        raise MdtError("give --checkpoint, the run folder or checkpoint file of a trained model")
    click.echo(ctx.get_help())
    if checkpoint is not None:
        print_options(load_translator(checkpoint, device).options)


def _framer(translator, landmarks: Path | None):
    """--align: frames each input the way the model's training images were framed."""
    from mdt.align import framer

    return framer(translator.recipe.data, _registry(), translator.image_size, landmarks, err_console)


@click.command("export")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.",
)
@click.option("--format", "fmt", required=True, help="onnx (for onnxruntime) or torchscript (for torch.jit.load).")
@click.option(
    "--out",
    required=True,
    type=GivenPath("--out", "a folder, or a .onnx/.pt file for a one-network model"),
    help="A folder (one file per network the model uses), or a .onnx/.pt file for a one-network model.",
)
@click.option("--overwrite", is_flag=True, help="Replace files that exist.")
def export_command(checkpoint: Path, fmt: str, out: Path, overwrite: bool) -> None:
    """Export the networks a model translates with, batch size dynamic, labels in the metadata."""
    from mdt.export import export_model

    for path in export_model(checkpoint, out, fmt, overwrite):
        console.print(f"wrote {path}", markup=False, soft_wrap=True)


@click.command("save-pretrained")
@click.argument("source", metavar="RUN_OR_FILE", type=click.Path(path_type=Path))
@click.argument("out", metavar="DIR", type=FolderPath("DIR", "a folder for the model"))
@click.option(
    "--license",
    "licence",
    help="The weights' licence as a Hub identifier (mit, apache-2.0, cc-by-nc-4.0, ...); "
    "default: the one an imported checkpoint records, else 'not stated' (other on the Hub).",
)
@click.option("--overwrite", is_flag=True, help="Replace files already in DIR.")
def save_pretrained_command(source: Path, out: Path, licence: str | None, overwrite: bool) -> None:
    """Write a model folder to share (Hub layout): model.safetensors, recipe, labels,
    a sample grid and a README.md model card with the run's metrics."""
    from mdt.pretrained import save_pretrained

    card = save_pretrained(
        source, out, licence=licence, overwrite=overwrite, say=lambda line: console.print(line, markup=False, soft_wrap=True)
    )
    console.print(f"wrote {out} (model card: {card})", markup=False, soft_wrap=True)


@click.command()
@click.argument("input_path", metavar="INPUT", type=GivenPath("INPUT", "an image file or a folder of images"))
@click.argument("output", metavar="OUTPUT", type=GivenPath("OUTPUT", "a .png file or a folder for the framed images"))
@click.option(
    "--checkpoint", type=click.Path(path_type=Path), help="Frame like this model's training images (its datasets and image size)."
)
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), help="Frame like this recipe's training images.")
@click.option(
    "--landmarks",
    type=FilePath("--landmarks", "the landmark network's weights file"),
    help="Weights of a face-landmark network (StarGAN v2's wing.ckpt for FAN); without it: the centre square.",
)
@click.option("--detector", help="The registered landmark detector to use (default: the only one).")
@click.option("--size", type=int, help="Output size in pixels (default: the model's or recipe's image size).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--skip-bad-files", is_flag=True, help="Name and skip unreadable images instead of stopping at the first.")
def align(
    input_path: Path,
    output: Path,
    checkpoint: Path | None,
    recipe_path: Path | None,
    landmarks: Path | None,
    detector: str | None,
    size: int | None,
    overwrite: bool,
    skip_bad_files: bool,
) -> None:
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
        recipe_obj = checked_recipe(str(recipe_path), (), registry)
    size = size if size is not None else recipe_obj.run.image_size
    if not 8 <= size <= 4096:
        raise MdtError(f"--size {size}: give a size from 8 to 4096 pixels")
    from mdt.translate_files import left_out

    if note := left_out(input_path):
        err_console.print(f"note: {note}", markup=False, soft_wrap=True)
    how, skipped = align_files(
        input_path, output, recipe_obj.data, registry, size, landmarks, detector, overwrite, skip_bad_files, err_console
    )
    console.print(
        f"aligned {sum(how.values())} image(s) to {size} px: "
        + ", ".join(f"{n} by {w}" for w, n in how.items())
        + (f"; skipped {skipped} unreadable" if skipped else ""),
        markup=False,
    )


@click.command()
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint file, run folder, model folder (mdt save-pretrained) or hf://OWNER/NAME.",
)
@click.option("--port", default=7860, show_default=True, help="Port of the local web page.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: reachable from other machines).")
@click.option("--max-file-mb", default=20, show_default=True, help="Largest upload accepted.")
@click.option("--device", default="auto", show_default=True)
def serve(checkpoint: Path, port: int, host: str, max_file_mb: int, device: str) -> None:
    """Try a trained model in the browser: upload an image, choose targets, see and
    download the result (needs Gradio, the demo extra)."""
    from mdt.serve import serve as run_server

    run_server(checkpoint, host=host, port=port, device=device, max_file_mb=max_file_mb)


MODEL_COMMANDS = (translate, export_command, save_pretrained_command, align, serve)
