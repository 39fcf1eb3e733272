"""Export a model's networks for serving without mdt: ONNX (run with onnxruntime) or
TorchScript (``torch.jit.load``). An ONNX file's batch axis is dynamic, and so is every
other axis of a sample input that the network allows (a fully convolutional generator
takes any height and width; torch's exporter keeps an axis fixed where the network
needs it so).

Which networks, and with what inputs, comes from the method itself: the translator
draws its grid (every target) once on random images while each network's inputs are
recorded, and every network it called is exported with those inputs as the example.
Input and output names are those the network declares (else its role's: ``images``,
``labels``, ``style``, ...), so a plugin's method exports like the built-in ones. Each file carries the label
schemas, the image size and the samples (ONNX metadata ``mdt.labels``,
``mdt.image_size``, ``mdt.sample``; a TorchScript file's extra file ``mdt.json``);
samples are (B, C, H, W) in [-1, 1]."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from mdt.errors import MdtError, written_as
from mdt.extras import install_hint
from mdt.interfaces import Network
from mdt.labels import schemas_to_json
from mdt.samples import SampleSpec, square_images
from mdt.writing import (
    carry_over,
    discard,
    output_lock,
    remove_stale_scratch,
    scratch_folder,
    settle,
    staged_as,
    swap_in,
    temporary,
)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# How to call an exported network without mdt (docs/deploy.md), written into each file.
INPUT = "float32 RGB images (B, 3, S, S) in [-1, 1]: uint8 / 127.5 - 1"
RESIZE = (
    "the centre square of the photo (its side the shorter side; left = round((width - side) / 2), "
    "top likewise), resized to S x S with PIL's BILINEAR filter"
)
OUTPUT = "images in [-1, 1]: uint8 = round((x + 1) * 127.5) after clamping x to [-1, 1]"


def recorded_calls(translator) -> dict[str, tuple[torch.Tensor, ...]]:
    """The first inputs each network received while the translator drew its grid."""
    method = translator.components.method
    calls: dict[str, tuple[torch.Tensor, ...]] = {}
    hooks = []
    for name, network in method.networks().items():

        def record(module, args, kwargs, name=name):
            if name not in calls:
                calls[name] = tuple(a for a in (*args, *kwargs.values()) if a is not None)

        hooks.append(network.register_forward_pre_hook(record, with_kwargs=True))
    try:
        torch.manual_seed(0)
        images = torch.rand(2, *translator.sample.shape, device=translator.device) * 2 - 1
        with torch.no_grad():
            # A grid may need a choice made (CycleGAN: the inputs' domain): then a grid for
            # each of its values, so that every network is called (each pair's generator).
            options = [o for o in translator.options if o.type == "choice" and o.choices and o.grid]
            try:
                translator.translator.grid(images)
            except MdtError:
                for option in options:
                    for value in option.choices:
                        translator.translator.grid(images, **{option.name: value})
            choices = {o.name: o.choices[0] for o in options}  # for a style reference: its domain
            # An image option (a style reference) calls networks of its own.
            for option in translator.options:
                if option.type == "image" and option.grid:
                    translator.translator.grid(images, **{option.name: images, **choices})
    finally:
        for hook in hooks:
            hook.remove()
    if not calls:
        raise MdtError("this model's translator called no network; nothing to export")
    return calls


def io_names(method, name: str, network, inputs: int, outputs: int) -> tuple[list[str], list[str]]:
    """Input and output names as the network declares them, else as its role does
    (``generator_ab.x`` is a ``generator``), else numbered."""
    role = next((r for n, r in sorted(method.roles.items(), key=lambda item: -len(item[0])) if name.startswith(n)), None)

    def first(declared, count: int, prefix: str) -> list[str]:
        # a call leaves out trailing inputs it gives as None (StarGAN v2's landmark masks)
        return next((list(names)[:count] for names in declared if names and len(names) >= count), [f"{prefix}_{i}" for i in range(count)])

    declared = network if isinstance(network, Network) else Network  # a method's own module declares nothing
    return (
        first([declared.inputs, role and role.inputs], inputs, "input"),
        first([declared.outputs, role and role.outputs], outputs, "output"),
    )


def export_model(source: str | Path, out: Path, fmt: str, overwrite: bool = False) -> list[Path]:
    """Write one file per network the translator uses; returns their paths. ``out`` is a
    folder, or a file name when the model has one such network. Existing files are
    replaced only with ``overwrite``."""
    from mdt.inference import load_translator

    if fmt not in FORMATS:
        raise MdtError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    suffix = FORMATS[fmt]
    as_file = bool(out.suffix) and not out.is_dir()  # an existing folder named "exp.v2" is a folder
    if as_file and out.suffix != suffix:
        raise MdtError(f"--out '{out}': {'an ONNX' if fmt == 'onnx' else 'a TorchScript'} file ends in {suffix}")
    translator = load_translator(source, device="cpu")
    calls = recorded_calls(translator)
    if as_file:
        if len(calls) > 1:
            raise MdtError(f"--out '{out}' is one file, but this model uses {len(calls)} networks ({', '.join(calls)}); give a folder")
        targets = {next(iter(calls)): out}
    else:
        targets = {name: out / f"{name}{suffix}" for name in calls}
    taken = [path for path in targets.values() if path.exists()]
    if taken and not overwrite:
        raise MdtError(f"'{taken[0]}' exists; pass --overwrite to replace it, or choose another --out")
    if folders := [path for path in taken if path.is_dir()]:
        raise MdtError(f"'{folders[0]}' is a folder; move it away to export there")
    about = contract(translator.components)
    networks = translator.components.method.networks()
    contents = {}
    for name, path in targets.items():
        network, example = networks[name].eval(), calls[name]
        with torch.no_grad():
            result = network(*example)
        count = len(result) if isinstance(result, (tuple, list)) else 1
        inputs, outputs = io_names(translator.components.method, name, network, len(example), count)
        meanings = network.meanings if isinstance(network, Network) else Network.meanings
        about["mdt.meanings"] = json.dumps({n: meanings[n] for n in (*inputs, *outputs) if n in meanings})
        if fmt == "onnx":
            contents[path] = _onnx(network, example, inputs, outputs, about, translator.sample.shape)
        else:
            contents[path] = _torchscript(network, example, {**about, "inputs": inputs, "outputs": outputs})
    if as_file:
        write_all(contents, replace=overwrite)
    else:
        write_folder(out, contents, overwrite, suffix)
    return list(targets.values())


def contract(components) -> dict[str, str]:
    """What every exported file of a model says about calling it: its labels, image size and
    samples, what its inputs are and how a photo becomes one, what the condition's entries are."""
    sample = components.sample
    rgb_squares = sample == square_images(components.settings.image_size)
    return {
        "mdt.labels": schemas_to_json(components.schemas),
        "mdt.image_size": str(components.settings.image_size),
        "mdt.sample": json.dumps(sample.to_json()),
        "mdt.input": INPUT if rgb_squares else sample_input(sample),
        "mdt.resize": RESIZE if rgb_squares else f"as mdt's '{sample.modality}' modality reads a file (mdt translate)",
        "mdt.output": OUTPUT if rgb_squares else sample_output(sample),
        "mdt.condition": json.dumps(components.label_encoder.condition_names()),
    }


def sample_input(sample: SampleSpec) -> str:
    """How a stored sample becomes a network's input, for samples other than RGB squares."""
    low, high = sample.low, sample.high
    return f"float32 {sample.modality} samples (B, {', '.join(map(str, sample.shape))}) in [-1, 1]: stored {sample.dtype} x as (x - {low:g}) * 2 / {high - low:g} - 1"


def sample_output(sample: SampleSpec) -> str:
    low, high = sample.low, sample.high
    rounded = "round(...) after clamping x to [-1, 1]" if sample.dtype == "uint8" else "after clamping x to [-1, 1]"
    return f"samples in [-1, 1]: stored {sample.dtype} = (x + 1) * {(high - low) / 2:g} + {low:g}, {rounded}"


def write_folder(out: Path, contents: dict[Path, bytes], overwrite: bool, suffix: str) -> None:
    """The files of a folder export, all at once: made in a scratch folder beside ``out``
    and swapped in whole (mdt.writing), so that a kill leaves the old export or the new
    one. Other files of the folder stay, but not an earlier export's files of this format
    that this model does not write (another model's networks beside this one's)."""
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):  # its permissions hold, though its parent could swap it
        raise PermissionError(errno.EACCES, "Permission denied", str(next(iter(contents))))
    remove_stale_scratch(out, lambda line: None)
    out.parent.mkdir(parents=True, exist_ok=True)
    ready = scratch_folder(out)
    try:
        with staged_as(ready, out):
            write_all({ready / path.name: data for path, data in contents.items()})
        names = {path.name for path in contents}
        with output_lock(out):  # what the folder holds is checked and swapped with no other writer between
            taken = sorted(name for name in names if (out / name).exists())
            if taken and not overwrite:
                raise MdtError(
                    f"'{out / taken[0]}' appeared while this command was writing: another process writes there; it was left as it is"
                )
            # a folder that holds other files is exchanged for the new one (they are carried over)
            holds_files = out.is_dir() and any(out.iterdir())
            carry_over(out, ready, leave=lambda path: path.name in names or path.suffix == suffix)
            swap_in(ready, out, replace=overwrite or holds_files)
    finally:
        shutil.rmtree(ready, ignore_errors=True)


def write_all(contents: dict[Path, bytes], replace: bool = True) -> None:
    """Every file or none: each is written beside its place first, then all are moved in.
    A refusal names the file as the user asked for it, not its temporary name; with
    ``replace`` False, a file another process put there meanwhile stops the export."""
    temporaries: dict[Path, Path] = {}
    try:
        for path, data in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporaries[path] = temporary(path)
            with written_as(path), open(temporaries[path], "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # as every write of mdt's: on disk before it takes the final name
        for path, tmp in temporaries.items():
            with written_as(path):
                settle(tmp, path, replace)
    finally:
        for tmp in temporaries.values():
            discard(tmp)


def _onnx(network, example, inputs: list[str], outputs: list[str], about: dict[str, str], sample: tuple[int, ...]) -> bytes:
    try:
        import onnx  # noqa: F401 - the model proto's package
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError:
        raise MdtError(f"ONNX export needs the onnx and onnxscript packages: {install_hint('export')}") from None

    batch = torch.export.Dim("batch", min=1)
    # an input shaped like the samples: its height and width (every axis after the
    # channels) dynamic where the network allows (AUTO keeps the others fixed)
    spatial = dict.fromkeys(range(2, len(sample) + 1), torch.export.Dim.AUTO)
    shapes = tuple({0: batch, **(spatial if tuple(t.shape[1:]) == sample else {})} for t in example)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the exporter's progress and notes
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            network,
            example,
            dynamic_shapes=shapes,
            input_names=inputs,
            output_names=outputs,
            dynamo=True,
            verbose=False,
        )
    assert program is not None, "torch.onnx.export returns its program when dynamo=True"
    model = program.model_proto
    for key, value in about.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def _torchscript(network, example, about: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # torch.jit's deprecation notices: the format is what was asked for
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={"mdt.json": json.dumps(about)})
    return buffer.getvalue()
