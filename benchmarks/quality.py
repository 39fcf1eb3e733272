"""Translation quality: the paper's StarGAN recipe beside candidate recipes, same data and seeds.

Every candidate trains on the same synthetic faces (6,000 drawn at 64 px; the held-out
faces' true translations are known): ``--data synthetic_faces`` (hair colour, glasses,
smile) or ``synthetic_celeba`` (CelebA's hair colours, Male and Young, changes spread over
the face; the recipe's CelebA table reads them) with the networks the recipe's size keys give (by
default G 32 channels / 4 residual blocks, D 32 channels / 5 layers), batch 16, no
learning-rate decay, fp32 (``--precision``), for each seed. Its checkpoints at the chosen iteration counts are
judged by one classifier trained once on the same faces (``mdt train-classifier``) and
measured by ``mdt eval``: target accuracy, ``counterfactual_l1`` (translation vs. the true
translation) and ``preservation_l1`` (translation vs. input where the truth keeps the
input). Prints a table (mean over seeds, and the range), writes it as quality.json, a
plot quality.png (with matplotlib) and grids side by side (samples_step_N.png).

    python benchmarks/quality.py                                   # every candidate
    python benchmarks/quality.py --candidates paper,plus --iterations 1000,3000 --seeds 0,1
    python benchmarks/quality.py --data synthetic_celeba --candidates paper,plus --iterations 500,1000

A candidate is a recipe file (``paper``: recipes/stargan_celeba.toml, ``plus``:
recipes/stargan_plus_celeba.toml) or the paper recipe with one change, as listed by
``--help``. Runs that finished are reused (delete --out to start over), so a table can be
extended candidate by candidate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mdt.recipe import recipe_tables
from mdt.toml_text import dump_toml

REPO = Path(__file__).resolve().parent.parent
Recipe = dict


def _add_loss(name: str, table: dict) -> Callable[[Recipe], None]:
    def change(recipe: Recipe) -> None:
        recipe["losses"][name] = dict(table)

    return change


def _drop_loss(name: str) -> Callable[[Recipe], None]:
    def change(recipe: Recipe) -> None:
        del recipe["losses"][name]

    return change


def _set(path: str, value) -> Callable[[Recipe], None]:
    def change(recipe: Recipe) -> None:
        *tables, key = path.split(".")
        node = recipe
        for name in tables:
            node = node[name]
        node[key] = value

    return change


def _all(*changes: Callable[[Recipe], None]) -> Callable[[Recipe], None]:
    def change(recipe: Recipe) -> None:
        for one in changes:
            one(recipe)

    return change


def _unset(path: str) -> Callable[[Recipe], None]:
    def change(recipe: Recipe) -> None:
        *tables, key = path.split(".")
        node = recipe
        for name in tables:
            node = node[name]
        node.pop(key, None)

    return change


def _first_plus(*changes: Callable[[Recipe], None]) -> Callable[[Recipe], None]:
    """The plus recipe until 2026-12-08 (attention-masked output, identity loss, 2 D steps
    per G step at lr 2e-4), from today's recipes/stargan_plus_celeba.toml, then
    ``changes``: the base of the candidates measured before today's recipe won."""
    return _all(
        _set("method.d_steps_per_g", 2),
        _unset("networks.generator.upsampling"),
        _unset("losses.classification.generator_scale"),
        _drop_loss("translation_source"),
        *changes,
    )


def _resize_decay(*changes: Callable[[Recipe], None]) -> Callable[[Recipe], None]:
    """plus_steps1_resize_decay (a G step every iteration, resize upsampling, rates decayed
    over the last 500 iterations), then ``changes``: the base of the later candidates."""
    return _first_plus(
        _set("method.d_steps_per_g", 1),
        _set("networks.generator.upsampling", "resize"),
        _set("method.decay_iterations", 500),
        *changes,
    )


# name -> (recipe file, change to it, what it is)
CANDIDATES: dict[str, tuple[str, Callable[[Recipe], None], str]] = {
    "paper": ("recipes/stargan_celeba.toml", _all(), "StarGAN as in the paper: WGAN-GP, lr 1e-4, 5 D steps per G step"),
    "identity": (
        "recipes/stargan_celeba.toml",
        _add_loss("identity", {"type": "identity_l1", "weight": 5.0}),
        "paper + identity loss |G(x, c_x) - x| (weight 5)",
    ),
    "attention": (
        "recipes/stargan_celeba.toml",
        _set("networks.generator.type", "ganimation"),
        "paper + attention-masked output A*x + (1-A)*C (GANimation's generator)",
    ),
    "steps2": (
        "recipes/stargan_celeba.toml",
        _all(_set("method.d_steps_per_g", 2), _set("method.lr_generator", 2e-4), _set("method.lr_discriminator", 2e-4)),
        "paper with 2 D steps per G step and lr 2e-4",
    ),
    "identity+attention": (
        "recipes/stargan_celeba.toml",
        _all(_add_loss("identity", {"type": "identity_l1", "weight": 5.0}), _set("networks.generator.type", "ganimation")),
        "paper + identity loss + attention output",
    ),
    "residual": (
        "recipes/stargan_celeba.toml",
        _set("networks.generator.residual_output", True),
        "paper + residual output clamp(x + G(x, c), -1, 1)",
    ),
    "spectral": (
        "recipes/stargan_celeba.toml",
        _set("networks.discriminator.spectral_norm", True),
        "paper + spectral normalisation of D's convolutions",
    ),
    "ns_r1": (
        "recipes/stargan_celeba.toml",
        _all(
            _set("losses.adversarial.type", "nonsaturating"), _drop_loss("gradient_penalty"), _add_loss("r1", {"type": "r1", "weight": 1.0})
        ),
        "paper with the non-saturating loss and R1 (weight 1) instead of WGAN-GP",
    ),
    "ema": (
        "recipes/stargan_celeba.toml",
        _set("method.ema_decay", 0.99),
        "paper + a moving average of G (decay 0.99: a half-life of 69 G steps) that translates",
    ),
    "plus": (
        "recipes/stargan_plus_celeba.toml",
        _set("method.decay_iterations", 500),
        "recipes/stargan_plus_celeba.toml, its rates decayed over the last 500 iterations as the recipe's over its last half "
        "(since 2026-12-08: plus_steps1_resize_decay_fakesrc_gcls2)",
    ),
    "plus_first": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(),
        "the plus recipe until 2026-12-08 ('plus' in the tables before then): attention-masked output, identity loss, "
        "2 D steps per G step at lr 2e-4",
    ),
    # Changes to plus for changes that are spread over the face (--data synthetic_celeba: Male, Young)
    "plus_cls3": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("losses.classification.weight", 3.0)),
        "plus with the domain classification loss at weight 3 (both phases; the paper: 1)",
    ),
    "plus_id1": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("losses.identity.weight", 1.0)),
        "plus with the identity loss at weight 1 (plus: 5), so that G is held less to its input",
    ),
    "plus_steps1": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("method.d_steps_per_g", 1)),
        "plus with a G step every iteration (plus: every 2nd; about 1.5 times the time per iteration)",
    ),
    "plus_steps1_cls2": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("method.d_steps_per_g", 1), _set("losses.classification.weight", 2.0)),
        "plus_steps1 with the domain classification loss at weight 2 (both phases)",
    ),
    "plus_steps1_lr4": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("method.d_steps_per_g", 1), _set("method.lr_generator", 4e-4), _set("method.lr_discriminator", 4e-4)),
        "plus_steps1 with learning rates 4e-4",
    ),
    "plus_steps1_id1": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("method.d_steps_per_g", 1), _set("losses.identity.weight", 1.0)),
        "plus_steps1 with the identity loss at weight 1 (plus: 5), so that G is held less to its input",
    ),
    "plus_steps1_resize": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("method.d_steps_per_g", 1), _set("networks.generator.upsampling", "resize")),
        "plus_steps1 with resize-and-convolve upsampling in G (no checkerboard; plus: transposed convolutions)",
    ),
    "plus_steps1_resize_decay": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(),
        "plus_steps1_resize with the learning rates falling linearly to 0 over the last 500 iterations (the paper's schedule, shortened)",
    ),
    "plus_steps1_resize_decay_gcls2": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(
            _set("losses.classification.generator_scale", 2.0),
        ),
        "plus_steps1_resize_decay with G's classification term at twice D's (generator_scale 2; plus: one weight for both)",
    ),
    "plus_steps1_resize_decay_augment": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(
            _set("networks.discriminator.augment_shift", 0.125),
            _set("networks.discriminator.augment_cutout", 0.5),
        ),
        "plus_steps1_resize_decay with D's inputs shifted by up to 1/8 and half-side squares cut out (DiffAugment's translation and cutout)",
    ),
    "plus_steps1_resize_decay_start100": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(
            _set("method.generator_start", 100),
        ),
        "plus_steps1_resize_decay with D alone for the first 100 iterations (generator_start 100), so that G's first steps learn from a classifier that reads the attributes",
    ),
    "plus_steps1_resize_decay_rec5": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(
            _set("losses.reconstruction.weight", 5.0),
        ),
        "plus_steps1_resize_decay with the cycle loss at weight 5 (plus: 10): a texture G removes (stubble, wrinkles) cannot be drawn back exactly, so the cycle loss holds such changes faint",
    ),
    "plus_steps1_resize_decay_fakesrc": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(
            _add_loss("translation_source", {"type": "translation_source", "weight": 1.0}),
        ),
        "plus_steps1_resize_decay with D's classifier also taught that a translation still has its source's labels (a translation_source loss), so that G cannot satisfy it with faint cues",
    ),
    "plus_steps1_resize_decay_fakesrc_gcls2": (
        "recipes/stargan_plus_celeba.toml",
        _resize_decay(
            _add_loss("translation_source", {"type": "translation_source", "weight": 1.0}),
            _set("losses.classification.generator_scale", 2.0),
        ),
        "plus_steps1_resize_decay_fakesrc with G's classification term at twice D's (generator_scale 2)",
    ),
    "plus_lr4": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("method.lr_generator", 4e-4), _set("method.lr_discriminator", 4e-4)),
        "plus with learning rates 4e-4 (plus: 2e-4)",
    ),
    "plus_rescolor": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("networks.generator.residual_color", True)),
        "plus with a residual colour path: C = clamp(x + C'), so wrinkles and stubble are added onto the skin",
    ),
    "plus_down3": (
        "recipes/stargan_plus_celeba.toml",
        _first_plus(_set("networks.generator.downsamplings", 3)),
        "plus with 3 downsamplings in G (a bottleneck of 8x8 at 64 px: a larger receptive field)",
    ),
}


def benchmark_recipe(name: str, seed: int, args) -> Recipe:
    """The candidate's recipe on the benchmark's data, sizes, iterations and seed."""
    path, change, _ = CANDIDATES[name]
    recipe = recipe_tables(REPO / path)  # a recipe that extends another, merged with it
    recipe["method"]["decay_iterations"] = 0  # constant rates, unless the candidate decays them
    change(recipe)
    if args.data == "synthetic_celeba":  # the recipe's own CelebA table, on faces drawn in CelebA's layout
        (table,) = recipe["datasets"].values()
        table.update(type="synthetic_celeba", root=str(args.out / "synthetic_celeba"), size=args.faces, test_size=args.eval_images)
    else:
        recipe["datasets"] = {"faces": {"type": "synthetic_faces", "size": args.faces, "test_size": args.eval_images}}
    recipe["run"].update(run_settings(args, seed))
    recipe["run"]["precision"] = args.precision
    recipe["networks"]["generator"].update({"conv_dim": args.g_dim, "residual_blocks": args.g_blocks})
    recipe["networks"]["discriminator"].update({"conv_dim": args.d_dim, "layers": args.d_layers})
    recipe.pop("classifier", None)
    recipe.pop("metrics", None)
    recipe.pop("loggers", None)
    return recipe


def run_settings(args, seed: int) -> dict:
    """The [run] table every benchmark run shares: the iterations, size and seed asked for,
    a checkpoint and a sample grid at each iteration count measured, fp32, images cached."""
    every = min(args.iterations)
    return {
        "iterations": max(args.iterations),
        "image_size": args.size,
        "seed": seed,
        "threads": args.threads,
        "log_every": 100,
        "sample_every": every,
        "sample_count": 6,
        "checkpoint_every": every,
        "keep_checkpoints": 0,
        "num_workers": 0,
        "precision": "fp32",
        "cache_images": True,
    }


def mdt(*arguments: str, log: Path) -> float:
    """Run an mdt command, its output to ``log`` (not a pipe: a run outlives this script);
    its wall time in seconds."""
    command = [str(Path(sys.executable).with_name("mdt")), *arguments]
    log.parent.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{log.read_text()[-3000:]}")
    return time.monotonic() - began


def train(name: str, seed: int, args, console: Console) -> Path:
    """The candidate's run for this seed: reused if an earlier call finished it (it may have
    stopped at other iteration counts; steps it lacks stay blank in the table)."""
    folder = args.out / f"{name}-seed{seed}"
    recipe_file = args.out / f"{name}-seed{seed}.toml"
    if folder.exists():
        planned = tomllib.loads(recipe_file.read_text())["run"]["iterations"] if recipe_file.exists() else 0
        if (folder / "checkpoints" / f"step_{planned:08d}.safetensors").exists():
            return folder
        sys.exit(f"{folder} holds an unfinished run: delete it or run `mdt run {folder}/recipe.toml --resume {folder}`")
    args.out.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(dump_toml(benchmark_recipe(name, seed, args)))
    console.print(f"training {name}, seed {seed}, {max(args.iterations)} iterations -> {folder}")
    mdt("run", str(recipe_file), "--out", str(folder), log=args.out / f"{name}-seed{seed}.log")
    return folder


def judge(args, console: Console) -> Path:
    """One classifier for every candidate, trained on the benchmark's training faces."""
    folder = args.out / "judge"
    if (folder / "classifier.safetensors").exists():
        return folder
    recipe = benchmark_recipe("paper", 0, args)
    recipe["classifier"] = {"type": "timm", "backbone": "resnet18", "steps": args.judge_steps}
    recipe_file = args.out / "judge.toml"
    args.out.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(dump_toml(recipe))
    console.print(f"training the judge -> {folder}")
    mdt("train-classifier", str(recipe_file), "--out", str(folder), log=args.out / "judge.log")
    return folder


def measure(run: Path, step: int, judge_folder: Path, args) -> dict[str, float]:
    out = run / f"quality-step_{step:08d}"
    if not (out / "metrics.json").exists():
        mdt(
            "eval",
            "--checkpoint",
            str(run / "checkpoints" / f"step_{step:08d}.safetensors"),
            "--classifier",
            str(judge_folder),
            "--metric",
            "translation_accuracy",
            "--metric",
            "counterfactual",
            "--max-images",
            str(args.eval_images),
            "--out",
            str(out),
            "--overwrite",
            log=run / f"quality-step_{step:08d}.log",
        )
    values = json.loads((out / "metrics.json").read_text())["metrics"]
    return {
        "target_accuracy": values["translation_accuracy/target_accuracy"],
        **{key: values[f"counterfactual/{key}"] for key in ("counterfactual_l1", "preservation_l1", "identity_l1")},
    }


def summary(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} ({min(values):.3f}-{max(values):.3f})"


def print_table(results: dict, args, console: Console) -> None:
    table = Table(title=f"quality at {args.size} px, mean over seeds {args.seeds} (range)")
    table.add_column("candidate")
    table.add_column("measure")
    for step in args.iterations:
        table.add_column(str(step), justify="right")
    for name, by_step in results.items():
        for measure, label in (
            ("target_accuracy", "target accuracy"),
            ("counterfactual_l1", "counterfactual L1"),
            ("preservation_l1", "preservation L1"),
        ):
            cells = [summary([r[measure] for r in by_step[step]]) if step in by_step else "" for step in args.iterations]
            table.add_row(name if measure == "target_accuracy" else "", label, *cells)
        table.add_section()
    console.print(table)
    unchanged = [r["identity_l1"] for by_step in results.values() for runs in by_step.values() for r in runs]
    console.print(f"an input left unchanged is {statistics.fmean(unchanged):.3f} from its true translation (counterfactual L1)")


def plot(results: dict, args, console: Console) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("no plot: pip install matplotlib")
        return
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for axis, (measure, label) in zip(
        axes,
        (("target_accuracy", "target accuracy"), ("counterfactual_l1", "counterfactual L1"), ("preservation_l1", "preservation L1")),
        strict=True,
    ):
        for name, by_step in results.items():
            steps = [s for s in args.iterations if s in by_step]
            axis.plot(steps, [statistics.fmean(r[measure] for r in by_step[s]) for s in steps], marker="o", label=name)
        axis.set_xlabel("iterations")
        axis.set_title(label)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out / "quality.png", dpi=110)
    console.print(f"wrote {args.out / 'quality.png'}")


def side_by_side(results: dict, args, console: Console) -> None:
    """Each candidate's sample grid (seed 0) at each step, left to right, for a person to look at."""
    from PIL import Image

    for step in args.iterations:
        grids = [
            Image.open(p)
            for name in results
            if (p := args.out / f"{name}-seed{args.seeds[0]}" / "samples" / f"step_{step:08d}.png").exists()
        ]
        if len(grids) < 2:
            continue
        sheet = Image.new("RGB", (sum(g.width for g in grids) + 8 * (len(grids) - 1), max(g.height for g in grids)), "white")
        x = 0
        for grid in grids:
            sheet.paste(grid, (x, 0))
            x += grid.width + 8
        sheet.save(args.out / f"samples_step_{step:08d}.png")
    console.print(f"grids side by side ({', '.join(results)}): {args.out}/samples_step_*.png")


def main() -> None:
    listing = "; ".join(f"{name}: {text}" for name, (_, _, text) in CANDIDATES.items())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=f"candidates — {listing}")

    def numbers(text: str) -> list[int]:
        return [int(v) for v in text.split(",")]

    parser.add_argument("--candidates", default=",".join(CANDIDATES), type=lambda t: t.split(","))
    parser.add_argument("--iterations", default=[500, 1000, 2000, 3000], type=numbers)
    parser.add_argument("--seeds", default=[0, 1], type=numbers)
    parser.add_argument("--size", default=64, type=int)
    parser.add_argument("--faces", default=6000, type=int, help="training faces")
    parser.add_argument("--eval-images", default=256, type=int, help="held-out faces measured")
    parser.add_argument("--g-dim", default=32, type=int)
    parser.add_argument("--g-blocks", default=4, type=int)
    parser.add_argument("--d-dim", default=32, type=int)
    parser.add_argument("--d-layers", default=5, type=int)
    parser.add_argument("--judge-steps", default=300, type=int, help="training steps of the judge classifier")
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"], help="every candidate's [run] precision")
    parser.add_argument(
        "--data",
        default="synthetic_faces",
        choices=["synthetic_faces", "synthetic_celeba"],
        help="synthetic_faces: hair colour, glasses, smile; synthetic_celeba: CelebA's hair colours, Male and Young, varied pose and backgrounds",
    )
    parser.add_argument("--out", type=Path, help="default benchmarks/out/quality (synthetic_faces) or benchmarks/out/quality_celeba")
    args = parser.parse_args()
    if args.out is None:
        args.out = REPO / "benchmarks" / "out" / ("quality" if args.data == "synthetic_faces" else "quality_celeba")
    args.iterations = sorted(set(args.iterations))
    unknown = [n for n in args.candidates if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidate {unknown[0]!r}; candidates: {', '.join(CANDIDATES)}")
    if any(step % args.iterations[0] for step in args.iterations):
        parser.error("every --iterations value must be a multiple of the smallest (checkpoints are saved every that many)")
    console = Console()
    judge_folder = judge(args, console)
    results: dict[str, dict[int, list[dict[str, float]]]] = {}
    for name in args.candidates:
        for seed in args.seeds:
            run = train(name, seed, args, console)
            for step in args.iterations:
                if (run / "checkpoints" / f"step_{step:08d}.safetensors").exists():
                    results.setdefault(name, {}).setdefault(step, []).append(measure(run, step, judge_folder, args))
    (args.out / "quality.json").write_text(
        json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1)
    )
    print_table(results, args, console)
    plot(results, args, console)
    side_by_side(results, args, console)


if __name__ == "__main__":
    main()
