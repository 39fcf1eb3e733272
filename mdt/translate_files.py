"""Translating files and folders: what ``mdt translate`` does once its flags are read.

The model's modality (:class:`mdt.interfaces.Modality`: images, or a plugin's speech)
says which files of a folder are inputs, reads each into a sample and makes and writes
each output.

One output per input and request (with ``num``, one per value of the model's varying
option), or grids; nothing is written unless every output can be, and never half of one.
An unreadable input stops the job, saying how many outputs came before it, or with
``skip_bad_files`` is named and skipped. While the generator runs on one batch, the next
is read and the last one's outputs written (decoding, encoding and file writes release
the GIL); the face aligner runs a network and names files as it goes, so with it the
batches are read in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from mdt.errors import MdtError
from mdt.grids import save_png
from mdt.images import IMAGE_SUFFIXES, ImageProblem, check_crop, read_rgb

LISTED = 20  # up to this many outputs, each is named as it is written; beyond, a count


def image_files(path: Path) -> list[Path]:
    """The image files of a folder (sorted), or the one file ``path``."""
    return input_files(path, IMAGE_SUFFIXES, "images")


def input_files(path: Path, suffixes: tuple[str, ...], nouns: str) -> list[Path]:
    """The files of a folder with one of ``suffixes`` (sorted; hidden ones aside), or the
    one file ``path``; ``nouns`` names them in the error for a folder without any."""
    if path.is_dir():  # a broken link named like an input is an input that cannot be read, not nothing
        files = sorted(p for p in path.iterdir() if (p.is_file() or p.is_symlink()) and _accepted(p, suffixes))
        if not files:
            raise MdtError(f"input folder '{path}' holds no {nouns}")
        return files
    if not path.exists():
        raise MdtError(f"input '{path}' does not exist")
    return [path]


def _accepted(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.suffix.lower() in suffixes and not path.name.startswith(".")


def left_out(path: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES, nouns: str = "pictures") -> str | None:
    """What a folder of inputs holds besides inputs (hidden files aside), in words, or None."""
    if not path.is_dir():
        return None
    others: dict[str, int] = {}
    for p in path.iterdir():
        if p.is_file() and not p.name.startswith(".") and not _accepted(p, suffixes):
            others[p.suffix.lower() or "no suffix"] = others.get(p.suffix.lower() or "no suffix", 0) + 1
    if not others:
        return None
    kinds = ", ".join(f"{suffix} ({count})" for suffix, count in sorted(others.items()))
    count = sum(others.values())
    return f"left out {count} file{'' if count == 1 else 's'} of '{path}' that are not {nouns}: {kinds}"


@dataclass
class Input:
    """An input file as its modality read it (``given``) and as the model's sample."""

    given: Any
    sample: Any  # (C, H, W) in [-1, 1] on the model's device


def read_input(file: Path, job: Job) -> Input:
    """An input file read by the model's modality (with ``job.aligner``, framed like the
    training images first) and made a sample, so that one that cannot be names its file."""
    modality = job.translator.modality
    given = modality.read(file) if job.aligner is None else read_picture(file, job.crop, job.aligner)
    try:
        return Input(given, job.translator.samples_of([given], job.crop)[0])
    except MdtError as exc:
        raise MdtError(f"cannot use '{file}': {exc}") from None


def read_picture(file: Path, crop: int, aligner=None):
    """An input image, checked here so that a crop too big for it names the file; with
    ``aligner``, framed like the model's training images (mdt.align)."""
    try:
        picture = read_rgb(file)
        if aligner is not None:
            return aligner(file, picture)
        check_crop(*picture.size, crop, str(file))
    except ImageProblem as exc:
        raise MdtError(str(exc)) from None
    return picture


def fresh_outputs(outputs: list[Path], overwrite: bool, sources: list[Path] | None = None, input_path: Path | None = None) -> None:
    """Nothing is written unless every output can be: a folder is never replaced, no two
    inputs (``sources``, one per output) write the same file (a.png and a.jpg), and no
    output is, or lies inside, the input ``input_path`` (whatever ``overwrite`` says)."""
    if input_path is not None:
        apart_from_input(input_path, outputs)
    first: dict[Path, Path] = {}
    for source, output in zip(sources or [], outputs, strict=False):
        if output in first and first[output] != source:
            raise MdtError(
                f"inputs '{first[output]}' and '{source}' would both be written to '{output}'; "
                "rename one, or translate them into different folders"
            )
        first.setdefault(output, source)
    folders = [p for p in outputs if p.is_dir()]
    if folders:
        raise MdtError(f"output '{folders[0]}' is a folder; give another name for the image")
    taken = [p for p in outputs if p.exists()]
    if taken and not overwrite:
        raise MdtError(f"output '{taken[0]}' exists; pass --overwrite to replace it")


def apart_from_input(input_path: Path, outputs: list[Path]) -> None:
    """Refuse an output that is the input file or folder, or lies inside the input folder,
    once symbolic links and ".." are resolved: it would replace the originals or mix the
    results with them, and --overwrite is not the way out."""
    given = input_path.resolve()
    for output in outputs:
        out = output.resolve()
        if out == given or given in out.parents:
            how = "is" if out == given else "lies inside"
            raise MdtError(
                f"output '{output}' {how} the input '{input_path}': the results would replace or mix with the originals, "
                "whatever --overwrite says; write them elsewhere"
            )


def bad_input(exc: MdtError, written: int, skip: bool, where: Console) -> None:
    """At an unreadable input: stop, saying how many outputs came before it (none is ever
    half-written); or, with ``skip`` (--skip-bad-files), name it on ``where`` and go on."""
    if not skip:
        raise MdtError(
            f"{exc}; {written} output{'s' if written != 1 else ''} written before it, none half-written (--skip-bad-files skips such files)"
        ) from None
    where.print(f"skipped: {exc}", markup=False, soft_wrap=True)


@dataclass
class Job:
    """What to translate, into where, and how (``mdt translate``'s flags, read)."""

    translator: Any  # an mdt.inference.ImageTranslator
    files: list[Path]
    input_path: Path
    output: Path
    request: dict[str, Any]
    num: int | None = None  # outputs per input of a model whose outputs vary (--num)
    crop: int = 0
    overwrite: bool = False
    batch_size: int = 16
    skip_bad_files: bool = False
    aligner: Callable | None = None
    out: Console = field(default_factory=Console)  # "wrote ..." lines
    err: Console = field(default_factory=lambda: Console(stderr=True))  # skipped files and the progress bar

    @property
    def count(self) -> int:
        """Outputs per input and request."""
        return self.num or 1

    def bad_input(self, exc: MdtError, written: int, where: Console | None = None) -> None:
        bad_input(exc, written, self.skip_bad_files, where or self.err)


def write_grids(job: Job) -> None:
    """One grid per input into the folder ``output``, or one grid of every input into ``output``.png."""
    one_grid = job.output.suffix.lower() == ".png" and not job.output.is_dir()
    outputs = [job.output] if one_grid else [job.output / f"{f.stem}.png" for f in job.files]
    fresh_outputs(outputs, job.overwrite, None if one_grid else job.files, job.input_path)
    groups = [job.files] if one_grid else [[f] for f in job.files]
    written = 0
    for group, target in zip(groups, outputs, strict=True):
        inputs, names = [], []
        for file in group:
            try:
                inputs.append(read_input(file, job))
                names.append(file.stem)
            except MdtError as exc:
                job.bad_input(exc, written)
        if not inputs:
            continue
        try:  # one grid of a folder names each row's file
            grid = job.translator.grid(
                torch.stack([i.sample for i in inputs]),
                crop_size=job.crop,
                num=job.num,
                batch_size=job.batch_size,
                names=names if one_grid and job.input_path.is_dir() else None,
                made=True,
                **job.request,
            )
        except ImageProblem as exc:
            raise MdtError(str(exc)) from None
        save_png(grid, target, job.overwrite)
        written += 1
        job.out.print(f"wrote {target}", markup=False)
    if not written:
        raise MdtError(f"nothing translated: all {len(job.files)} inputs in '{job.input_path}' were unreadable")


def requests_of(job: Job) -> list[dict[str, Any]]:
    """The request, or with ``num`` one per value of the varying option from the asked one on."""
    if job.count == 1:
        return [job.request]
    varies = job.translator.translator.varies
    option = next(o for o in job.translator.options if o.name == varies)
    start = job.request.get(varies, option.default or 0)
    return [{**job.request, varies: start + k} for k in range(job.count)]


def targets_of(job: Job, requests: list[dict[str, Any]]) -> dict[tuple[Path, int], Path]:
    """Each (input, request)'s output file: ``output`` itself for one input and request,
    else in the folder ``output``, named by the input, the request's choices and the
    varying value (``dog_cat_5.png``)."""
    if job.input_path.is_file() and job.count == 1:
        return {(job.files[0], 0): job.output}
    varies = job.translator.translator.varies
    suffix = job.translator.modality.output_suffix

    def name(file: Path, wanted: dict) -> Path:
        if job.count == 1:
            return job.output / f"{file.stem}{suffix}"
        choices = [str(wanted[o.name]) for o in job.translator.options if o.type == "choice" and o.name in wanted]
        return job.output / ("_".join([file.stem, *choices, str(wanted[varies])]) + suffix)

    return {(file, k): name(file, r) for file in job.files for k, r in enumerate(requests)}


class Writes:
    """Outputs written in a helper thread, counted and named in order once done, so that
    the count an error gives is of outputs on disk."""

    def __init__(self, job: Job, listed: bool, pool: ThreadPoolExecutor) -> None:
        self.job, self.listed, self.written, self.pool = job, listed, 0, pool
        self.pending: list[tuple[Future, Path]] = []
        self.failed = False  # once a write fails, the writes queued after it do not happen

    def add(self, output, target: Path) -> None:
        self.pending.append((self.pool.submit(self._write, output, target), target))

    def _write(self, output, target: Path) -> None:
        if self.failed:  # the pool has one thread: this is after the failed write, never beside it
            return
        try:
            self.job.translator.modality.write(output, target, self.job.overwrite)
        except BaseException:
            self.failed = True
            raise

    def finish(self) -> None:
        for future, target in self.pending:
            future.result()
            self.written += 1
            if self.listed:
                self.job.out.print(f"wrote {target}", markup=False, soft_wrap=True)
        self.pending.clear()


def _read(job: Job, chunk: list[Path]) -> list[tuple[Path, Input | MdtError]]:
    """Each file as an input, or the MdtError that reading it raised (reported in order)."""
    inputs: list[tuple[Path, Input | MdtError]] = []
    for file in chunk:
        try:
            inputs.append((file, read_input(file, job)))
        except MdtError as exc:
            inputs.append((file, exc))
    return inputs


def _translated(job: Job, inputs: list[Input], requests: list[dict[str, Any]]) -> list[list]:
    """Every request of a batch first: one the model refuses leaves nothing of the batch
    written. Inputs of one shape go through the generator together (recordings of other
    lengths in turn); each output is made by the modality from its sample and its input."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, given in enumerate(inputs):
        groups.setdefault(tuple(given.sample.shape), []).append(index)
    results = []
    for wanted in requests:
        out: list[Any] = [None] * len(inputs)
        for indices in groups.values():
            try:
                batch = job.translator(torch.stack([inputs[i].sample for i in indices]), crop_size=job.crop, made=True, **wanted)
            except ImageProblem as exc:
                raise MdtError(str(exc)) from None
            for i, values in zip(indices, batch, strict=True):
                out[i] = job.translator.modality.from_sample(values, inputs[i].given, wanted)
        results.append(out)
    return results


def write_translations(job: Job) -> None:
    """One image per input and request, ``batch_size`` inputs per generator call (the
    module's docstring says how files are read, written and skipped)."""
    requests = requests_of(job)
    targets = targets_of(job, requests)
    fresh_outputs(list(targets.values()), job.overwrite, [file for file, _ in targets], job.input_path)
    chunks = [job.files[first : first + job.batch_size] for first in range(0, len(job.files), job.batch_size)]
    ahead = 0 if job.aligner is not None else 1
    skipped = 0
    with progress_bar(job.err, len(job.files) > 1) as progress, ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        writes = Writes(job, len(targets) <= LISTED, writer)
        task = progress.add_task("translating", total=len(job.files))
        reads = [reader.submit(_read, job, chunk) for chunk in chunks[:ahead]]
        for index, chunk in enumerate(chunks):
            batch = reads.pop(0).result() if reads else _read(job, chunk)
            if ahead and index + 1 < len(chunks):
                reads.append(reader.submit(_read, job, chunks[index + 1]))
            readable = [(file, given) for file, given in batch if isinstance(given, Input)]
            for _, given in batch:
                if isinstance(given, MdtError):
                    writes.finish()
                    job.bad_input(given, writes.written, progress.console)
                    skipped += 1
            results = _translated(job, [given for _, given in readable], requests)
            writes.finish()  # the previous batch's, written while this one was translated
            for k, outputs in enumerate(results):
                for (file, _), output in zip(readable, outputs, strict=True):
                    writes.add(output, targets[file, k])
            progress.advance(task, len(chunk))
        writes.finish()
    _summary(job, writes.written, skipped, len(targets))


def _summary(job: Job, written: int, skipped: int, outputs: int) -> None:
    if not written and skipped:
        raise MdtError(f"nothing translated: all {skipped} inputs in '{job.input_path}' were unreadable")
    if outputs > LISTED:
        nouns = f"{job.translator.modality.noun}s"
        job.out.print(f"wrote {written} {nouns} to {job.output}" + (f"; skipped {skipped} unreadable" if skipped else ""), markup=False)
    elif skipped:
        job.out.print(f"skipped {skipped} unreadable", markup=False)


def progress_bar(console: Console, shown: bool):
    """A progress bar with an ETA on ``console`` for a folder; nothing for one image."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=not shown or not console.is_terminal)
