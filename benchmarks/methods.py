"""Every method on the counterfactual benchmark: its quickstart recipe on synthetic faces
whose true translations are known, judged and measured as benchmarks/quality.py measures
StarGAN's recipes.

Each method keeps its quickstart's networks, losses and batch size; the benchmark sets the
data, the image size (64 px), the iterations, the seed and fp32. Each label set gets its
own judge (``mdt train-classifier``, ResNet-18, trained once). ``mdt eval`` measures target
accuracy and the ``counterfactual`` metric: distance to the true translation, and change
where the truth keeps the input — for StarGAN v2 in both its ways (a style drawn from
noise, a reference image's style; and the diversity of its outputs where the truth changes the
input and where it keeps it), for GANimation all and half the way, and for StarGAN's
joint CelebA + RaFD recipe across the two sets too (synthetic RaFD people drawn on the
CelebA faces' model: a RaFD expression on a CelebA face has a true translation).

    python benchmarks/methods.py                         # every method, seeds 0 and 1
    python benchmarks/methods.py --methods cyclegan --seeds 0 --iterations 500,1000

StarGAN v1 (the paper's recipe and plus) is measured by ``benchmarks/quality.py --data
synthetic_celeba`` on the same faces. Runs that finished are reused (delete --out to start
over). Prints a table and writes methods.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mdt.recipe import recipe_tables
from mdt.toml_text import dump_toml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ is scripts, not a package
from quality import mdt, run_settings, summary

REPO = Path(__file__).resolve().parent.parent
HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair"]
CELEBA = [*HAIR, "Male", "Young"]


@dataclass(frozen=True)
class Entry:
    """A method on the benchmark: its recipe, the faces each of its dataset tables trains
    on (with what that table says besides), and what the benchmark changes of it."""

    recipe: str
    data: tuple[tuple[str, dict], ...]  # per dataset table of the recipe, in order: (drawn set, its settings)
    method: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)  # per network: settings that replace the recipe's
    losses: dict = field(default_factory=dict)  # per loss table: settings that replace the recipe's (or a new table)
    counterfactual: dict = field(default_factory=dict)  # the counterfactual metric's settings
    diversity: bool = False  # also measure the diversity of its outputs (styles), split by the truth's region
    about: str = ""


SMALL_STARGAN = {"generator": {"conv_dim": 32, "residual_blocks": 4}, "discriminator": {"conv_dim": 32, "layers": 5}}

METHODS = {
    "stargan_v2": Entry(
        "recipes/stargan_v2_quickstart.toml",
        (("synthetic_celeba", {"attributes": HAIR}),),
        diversity=True,
        about="StarGAN v2's quickstart: the three hair colours as domains (Male and Young drawn, to be kept); "
        "diversity where the truth changes the input and where it keeps it",
    ),
    "cyclegan": Entry(
        "recipes/cyclegan_quickstart.toml",
        (("synthetic_celeba", {"attributes": CELEBA}),),
        {"domains": HAIR},
        about="CycleGAN's quickstart: one pair of generators per two hair colours",
    ),
    "ganimation": Entry(
        "recipes/ganimation_quickstart.toml",
        (("synthetic_expressions", {}),),
        counterfactual={"strengths": [0.5, 1.0]},
        about="GANimation's quickstart: smile, brow raise and eyes closed, each a strength in [0, 1]; measured half and all the way",
    ),
    "joint": Entry(
        "recipes/stargan_celeba_rafd.toml",
        (("synthetic_celeba", {}), ("synthetic_rafd", {})),
        {"decay_iterations": 0},
        SMALL_STARGAN,
        about="StarGAN's CelebA + RaFD recipe (the mask vector) at benchmarks/quality.py's sizes (G 32/4, D 32/5): "
        "synthetic RaFD people on the same face model, so a RaFD expression on a CelebA face has a truth",
    ),
    "joint_plus": Entry(
        "recipes/stargan_celeba_rafd.toml",
        (("synthetic_celeba", {}), ("synthetic_rafd", {})),
        {"decay_iterations": 0, "lr_generator": 2e-4, "lr_discriminator": 2e-4, "d_steps_per_g": 2},
        {**SMALL_STARGAN, "generator": {**SMALL_STARGAN["generator"], "type": "ganimation"}},
        losses={"identity": {"type": "identity_l1", "weight": 5.0}},
        about="the joint recipe with what the first plus recipe changed (attention-masked output, identity loss, "
        "2 D steps per G step at lr 2e-4)",
    ),
}


def data_table(data: str, args) -> dict:
    """A dataset table for one drawn set: the shared synthetic_celeba faces, synthetic RaFD
    people (8 pictures each, as many as --faces and --eval-images), or any other drawn set."""
    if data == "synthetic_celeba":
        return {"type": data, "root": str(args.faces_root), "size": args.faces, "test_size": args.eval_images}
    if data == "synthetic_rafd":
        return {"type": data, "root": str(args.out / "synthetic_rafd"), "people": args.faces // 8, "test_people": args.eval_images // 8}
    return {"type": data, "size": args.faces, "test_size": args.eval_images}


def benchmark_recipe(name: str, seed: int, args) -> dict:
    """The method's recipe on the benchmark's faces, size, iterations and seed."""
    entry = METHODS[name]
    recipe = recipe_tables(REPO / entry.recipe)
    tables = list(recipe["datasets"])
    recipe["datasets"] = {table: {**data_table(data, args), **extra} for table, (data, extra) in zip(tables, entry.data, strict=True)}
    recipe["method"].update(entry.method)
    for network, settings in entry.networks.items():
        recipe["networks"][network].update(settings)
    for loss, settings in entry.losses.items():
        recipe["losses"].setdefault(loss, {}).update(settings)
    recipe["run"].update(run_settings(args, seed))
    for loss in recipe.get("losses", {}).values():  # StarGAN v2's diversity weight decays over the run
        if "decay_iterations" in loss:
            loss["decay_iterations"] = max(args.iterations)
    recipe.pop("loggers", None)
    recipe.pop("classifier", None)
    # mdt eval --metric counterfactual reads this table's settings (the run measures it at its end too)
    recipe["metrics"] = {"counterfactual": {"type": "counterfactual", **entry.counterfactual}} if entry.counterfactual else {}
    if not recipe["metrics"]:
        recipe.pop("metrics")
    return recipe


def judge(name: str, args, console: Console) -> Path:
    """One judge per data and label set, trained on the benchmark's training faces."""
    entry = METHODS[name]
    sets = "+".join(f"{data}-{len(extra.get('attributes', []))}" for data, extra in entry.data)
    folder = args.out / f"judge-{sets}"
    if (folder / "classifier.safetensors").exists():
        return folder
    recipe = benchmark_recipe(name, 0, args)
    recipe["classifier"] = {"type": "timm", "backbone": "resnet18", "steps": args.judge_steps}
    recipe_file = folder.with_suffix(".toml")
    args.out.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(dump_toml(recipe))
    console.print(f"training the judge -> {folder}")
    mdt("train-classifier", str(recipe_file), "--out", str(folder), log=folder.with_suffix(".log"))
    return folder


def train(name: str, seed: int, args, console: Console) -> tuple[Path, float | None]:
    """The method's run for this seed (reused when an earlier call finished it) and its wall time."""
    folder = args.out / f"{name}-seed{seed}"
    recipe_file = args.out / f"{name}-seed{seed}.toml"
    timing = args.out / f"{name}-seed{seed}.seconds"
    if folder.exists():
        planned = tomllib.loads(recipe_file.read_text())["run"]["iterations"] if recipe_file.exists() else 0
        if (folder / "checkpoints" / f"step_{planned:08d}.safetensors").exists():
            return folder, float(timing.read_text()) if timing.exists() else None
        sys.exit(f"{folder} holds an unfinished run: delete it or run `mdt run --resume {folder}`")
    args.out.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(dump_toml(benchmark_recipe(name, seed, args)))
    console.print(f"training {name}, seed {seed}, {max(args.iterations)} iterations -> {folder}")
    seconds = mdt("run", str(recipe_file), "--out", str(folder), log=args.out / f"{name}-seed{seed}.log")
    timing.write_text(f"{seconds:.1f}\n")
    return folder, seconds


MEASURES = ("target_accuracy", "counterfactual_l1", "preservation_l1", "identity_l1", "diversity_changed", "diversity_kept")


def evaluated(run: Path, step: int, judge_folder: Path, metrics: list[str], name: str, max_images: int) -> dict:
    """``mdt eval``'s metrics of the checkpoint at ``step`` (measured once, then read back)."""
    out = run / f"{name}-step_{step:08d}"
    if not (out / "metrics.json").exists():
        checkpoint = run / "checkpoints" / f"step_{step:08d}.safetensors"
        arguments = ["eval", "--checkpoint", str(checkpoint), "--classifier", str(judge_folder), "--max-images", str(max_images)]
        arguments += [part for metric in metrics for part in ("--metric", metric)]
        mdt(*arguments, "--out", str(out), "--overwrite", log=run / f"{name}-step_{step:08d}.log")
    return json.loads((out / "metrics.json").read_text())["metrics"]


def measure(run: Path, step: int, judge_folder: Path, entry: Entry, args) -> dict:
    """``{way/measure: value}``: the way ``labels`` for a method whose outputs the labels
    decide; StarGAN v2's ``latent`` and ``reference`` (its accuracy: the latent way's);
    continuous labels part of the way, ``labels at 0.5``."""
    values = evaluated(run, step, judge_folder, ["translation_accuracy", "counterfactual"], "methods", args.eval_images)
    found: dict[str, str | float] = {}
    across: dict[str, list[float]] = {}  # joint: one dataset's labels on another's faces (keys source->target)
    for key, value in values.items():
        metric, _, rest = key.partition("/")
        *parts, name = rest.split("/")
        way = [p for p in parts if not p.startswith("strength_")]
        strength = [p.removeprefix("strength_") for p in parts if p.startswith("strength_")]
        if metric == "counterfactual" and name in MEASURES and len(way) <= 1:
            found[(way[0] if way else "labels") + (f" at {strength[0]}" if strength else "") + f"/{name}"] = value
        if metric == "counterfactual" and len(parts) == 1 and parts[0] in MEASURES:  # per target: measure/target
            across.setdefault(f"labels {'across' if '->' in name else 'within'} datasets/{parts[0]}", []).append(value)
    if any(key.startswith("labels across") for key in across):  # joint: each dataset's own labels, and the other's
        found.update({key: sum(v) / len(v) for key, v in across.items()})
    if entry.diversity:  # the diversity metric's own default of 64 held-out images, 10 outputs each
        spread = evaluated(run, step, judge_folder, ["diversity"], "methods-diversity", 64)
        for way in ("latent", "reference"):
            for region in ("changed", "kept"):
                found[f"{way}/diversity_{region}"] = spread[f"diversity/{way}/pixel_l1_{region}"]
    # accuracy is measured in the translator's first way, all the way
    first_way = next((k.split("/")[0] for k in found if " at " not in k), "labels")
    found[f"{first_way}/target_accuracy"] = values["translation_accuracy/target_accuracy"]
    return found


def first_rows(results: dict, args, console: Console, rows: int = 3) -> None:
    """The first ``rows`` rows of each method's last sample grid (seed of the first run),
    one above another, each under its method's name: for a person to look at."""
    from PIL import Image, ImageDraw

    step, pad, title = max(args.iterations), 2, 14
    parts = []
    for name in results:
        run = args.out / f"{name}-seed{args.seeds[0]}"
        if not (grid_file := run / "samples" / f"step_{step:08d}.png").exists():
            continue
        grid, settings = Image.open(grid_file), tomllib.loads((run / "recipe.toml").read_text())
        count = settings["run"]["sample_count"] * len(settings["datasets"])  # grid rows: samples per dataset
        header = grid.height - pad - count * (args.size + pad)
        parts.append((name, grid.crop((0, 0, grid.width, header + rows * (args.size + pad) + pad))))
    if not parts:
        return
    sheet = Image.new("RGB", (max(p.width for _, p in parts), sum(p.height + title for _, p in parts)), "white")
    y = 0
    for name, part in parts:
        ImageDraw.Draw(sheet).text((pad, y), f"{name}, {step} iterations", fill="black")
        sheet.paste(part, (0, y + title))
        y += part.height + title
    sheet.save(args.out / f"methods_step_{step:08d}.jpg", quality=90)
    console.print(f"first rows of each method's grid: {args.out / f'methods_step_{step:08d}.jpg'}")


def print_table(results: dict, seconds: dict, args, console: Console) -> None:
    table = Table(title=f"every method at {args.size} px, mean over seeds {args.seeds} (range)")
    for column in ("method", "way", "measure", *map(str, args.measure_at)):
        table.add_column(column, justify="right" if column.isdigit() else "left")
    for name, by_step in results.items():
        keys = sorted({key for runs in by_step.values() for run in runs for key in run})
        for way in sorted(dict.fromkeys(key.split("/")[0] for key in keys), key=lambda w: (" at " in w, " " in w)):  # all the way first
            for measure_name in MEASURES:
                key = f"{way}/{measure_name}"
                cells = [
                    summary([r[key] for r in by_step[s] if key in r]) if s in by_step and any(key in r for r in by_step[s]) else ""
                    for s in args.measure_at
                ]
                if any(cells):
                    table.add_row(name, way, measure_name.replace("_", " "), *cells)
        time_taken = [t for t in seconds.get(name, []) if t is not None]
        if time_taken:
            table.add_row(name, "", f"training, s ({max(args.iterations)} its)", *[""] * (len(args.measure_at) - 1), summary(time_taken))
        table.add_section()
    console.print(table)


def main() -> None:
    listing = "; ".join(f"{name}: {entry.about}" for name, entry in METHODS.items())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=f"methods — {listing}")

    def numbers(text: str) -> list[int]:
        return [int(v) for v in text.split(",")]

    parser.add_argument("--methods", default=",".join(METHODS), type=lambda t: t.split(","))
    parser.add_argument("--iterations", default=[500, 1000], type=numbers)
    parser.add_argument("--seeds", default=[0, 1], type=numbers)
    parser.add_argument(
        "--measure-at",
        type=numbers,
        help="iterations measured (default: every --iterations value; checkpoints and grids are saved at each)",
    )
    parser.add_argument("--size", default=64, type=int)
    parser.add_argument("--faces", default=6000, type=int, help="training faces")
    parser.add_argument("--eval-images", default=256, type=int, help="held-out faces measured")
    parser.add_argument("--judge-steps", default=300, type=int)
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--out", default=REPO / "benchmarks" / "out" / "methods", type=Path)
    parser.add_argument(
        "--faces-root",
        default=REPO / "benchmarks" / "out" / "quality_celeba" / "synthetic_celeba",
        type=Path,
        help="the synthetic_celeba folder (shared with benchmarks/quality.py --data synthetic_celeba: the same faces)",
    )
    args = parser.parse_args()
    args.iterations = sorted(set(args.iterations))
    unknown = [n for n in args.methods if n not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}; methods: {', '.join(METHODS)}")
    if any(step % args.iterations[0] for step in args.iterations):
        parser.error("every --iterations value must be a multiple of the smallest (checkpoints are saved every that many)")
    args.measure_at = sorted(set(args.measure_at or args.iterations))
    if not set(args.measure_at) <= set(args.iterations):
        parser.error(f"--measure-at {args.measure_at} must be among --iterations {args.iterations}")
    console = Console()
    results: dict[str, dict[int, list[dict[str, float]]]] = {}
    seconds: dict[str, list[float | None]] = {}
    for name in args.methods:
        judge_folder = judge(name, args, console)
        for seed in args.seeds:
            run, took = train(name, seed, args, console)
            seconds.setdefault(name, []).append(took)
            for step in args.measure_at:
                if (run / "checkpoints" / f"step_{step:08d}.safetensors").exists():
                    results.setdefault(name, {}).setdefault(step, []).append(measure(run, step, judge_folder, METHODS[name], args))
    (args.out / "methods.json").write_text(
        json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1)
    )
    print_table(results, seconds, args, console)
    first_rows(results, args, console)


if __name__ == "__main__":
    main()
