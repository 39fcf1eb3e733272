"""How many one-line bugs the tests catch: a curated mutation score.

Each mutant below changes one line of mdt the way a slip would (a sign, a slice, a
detach, a branch switched off), in a copy of the repository; the tests that cover that
code run against it, and the mutant is *killed* when any of them fails. A mutant that
no test can tell apart from the original because no result changes (only speed, say)
is marked ``equivalent`` with the reason, and is not counted. Survivors are the tests'
blind spots: docs/testing.md lists the ones left and why.

    python benchmarks/mutation.py                 # every mutant: a table, killed/survived, the score
    python benchmarks/mutation.py --list          # the mutants, without running anything
    python benchmarks/mutation.py --only fid_real_vs_real,maskvector_predict_first_slice

The copy is made once (the files git tracks), each mutant is applied and undone in it,
and the tests run there in a fresh process with ``-x`` (the first failure kills). Before
the mutants, every test selection runs once unmutated: a selection that fails on its own
would count as a kill, so the run stops instead. About 30-50 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent

# The tests that cover each area (a reviewer's "relevant tests"), the sharpest and quickest
# first: they run with -x, so a killed mutant stops at its first failure.
LABELS = ("tests/test_known_answers.py", "tests/test_labels.py", "tests/test_stargan.py")
CONTRACTS = ("tests/test_contracts.py",)
CHECKPOINTS = ("tests/test_checkpoints.py", "tests/test_legacy.py")
EXPORT = ("tests/test_export.py",)
METRICS = (
    "tests/test_known_answers.py",
    "tests/test_counterfactual.py",
    "tests/test_distances.py",
    *(
        f"tests/test_eval.py::{name}"
        for name in (
            "test_accuracy_and_cycle_error_on_constructed_translations_are_exact",
            "test_a_judge_of_one_class_per_image_is_scored_per_image_and_per_class_on_a_spread_sample",
            "test_real_images_of_a_continuous_target_are_those_within_the_tolerance",
            "test_a_translation_counts_right_only_when_the_new_domain_is_read",
            "test_pairs_of_an_exclusive_group_name_each_images_own_member",
        )
    ),
    "tests/test_fid_protocols.py::test_stargan_v2_protocol_equals_the_official_steps",
)
STARGAN = ("tests/test_stargan.py",)
STARGAN_V2 = ("tests/test_method_iterations.py", "tests/test_stargan_v2.py")
CYCLEGAN = ("tests/test_method_iterations.py", "tests/test_cyclegan.py")
GANIMATION = ("tests/test_method_iterations.py", "tests/test_ganimation.py")
TRANSLATE = ("tests/test_known_answers.py", "tests/test_translate.py")
UPDATE = ("tests/test_update.py", "tests/test_stargan.py", "tests/test_method_iterations.py")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    before: str  # must occur exactly once in the file
    after: str
    tests: tuple[str, ...]
    equivalent: str = ""  # why no result can change, for a mutant that is not counted


MUTANTS = [
    # ---- the six slips of issue 38's review
    Mutant(
        "maskvector_predict_first_slice",
        "plugins/mdt_labels/encoders.py",
        "return part_predict(self.schemas[source], logits[:, self._part(source)])",
        "return part_predict(self.schemas[source], logits[:, self._part(0)][:, :len(self.schemas[source])])",
        LABELS,
    ),
    Mutant(
        "counterfactual_mean_is_first_target",
        "plugins/mdt_metrics/counterfactual.py",
        "results[name] = sum(values) / len(values)",
        "results[name] = values[0]",
        METRICS,
    ),
    Mutant("contract_foreign_phase_off", "mdt/contracts.py", "    if foreign:\n", "    if False:\n", CONTRACTS),
    Mutant(
        "onnx_image_size_metadata",
        "mdt/export.py",
        '"mdt.image_size": str(components.settings.image_size)',
        '"mdt.image_size": str(components.settings.image_size * 2)',
        EXPORT,
    ),
    Mutant("fid_real_vs_real", "plugins/mdt_metrics/frechet.py", "fids.append(fid(real, fake))", "fids.append(fid(real, real))", METRICS),
    Mutant(
        "diversity_loss_without_detach",
        "plugins/mdt_stargan_v2/losses.py",
        "distance = (fake - other_fake.detach()).abs().mean()",
        "distance = (fake - other_fake).abs().mean()",
        STARGAN_V2,
    ),
    # ---- labels
    Mutant(
        "set_labels_clears_group_on_zero",
        "mdt/labels.py",
        "        if value == 1:\n            for other",
        "        if value == 0:\n            for other",
        LABELS,
    ),
    Mutant(
        "part_loss_not_averaged",
        "mdt/labels.py",
        'return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / logits.shape[0]',
        'return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")',
        LABELS,
    ),
    Mutant(
        "exclusive_group_always_one_member",
        "mdt/labels.py",
        "best = F.one_hot(part.argmax(dim=1), len(columns)).float() * (part.max(dim=1, keepdim=True).values > 0)",
        "best = F.one_hot(part.argmax(dim=1), len(columns)).float()",
        LABELS,
    ),
    Mutant(
        "continuous_tolerance_strict",
        "mdt/labels.py",
        "return (predicted - wanted).abs() <= CONTINUOUS_TOLERANCE + 1e-6",
        "return (predicted - wanted).abs() < CONTINUOUS_TOLERANCE - 1e-6",
        LABELS,
    ),
    Mutant(
        "grid_column_sets_instead_of_flipping",
        "mdt/labels.py",
        "flipped[:, column] = 1.0 - flipped[:, column]",
        "flipped[:, column] = 1.0",
        LABELS,
    ),
    Mutant(
        "bare_label_name_means_zero",
        "mdt/labels.py",
        "            values[name] = 1.0\n            continue",
        "            values[name] = 0.0\n            continue",
        LABELS,
    ),
    Mutant(
        "maskvector_mask_always_first",
        "plugins/mdt_labels/encoders.py",
        "condition[:, self._label_total + source] = 1.0",
        "condition[:, self._label_total] = 1.0",
        LABELS,
    ),
    Mutant(
        "maskvector_loss_first_slice",
        "plugins/mdt_labels/encoders.py",
        "return part_loss(self.schemas[source], logits[:, self._part(source)], labels)",
        "return part_loss(self.schemas[source], logits[:, self._part(0)][:, :len(self.schemas[source])], labels)",
        LABELS,
    ),
    Mutant(
        "categorical_predict_not_one_hot",
        "mdt/labels.py",
        "return F.one_hot(logits.argmax(dim=1), len(schema)).float()",
        "return (logits > 0).float()",
        LABELS,
    ),
    # ---- contracts
    Mutant(
        "contract_unoffered_field_passes",
        "mdt/contracts.py",
        "            if field not in available:\n",
        "            if False:\n",
        CONTRACTS,
    ),
    Mutant(
        "contract_other_inputs_pass",
        "mdt/contracts.py",
        "if role.inputs and inputs is not None and inputs != tuple(role.inputs):",
        "if False:",
        CONTRACTS,
    ),
    Mutant(
        "contract_missing_output_passes",
        "mdt/contracts.py",
        "missing = [o for o in role.outputs if o not in outputs]",
        "missing = []",
        CONTRACTS,
    ),
    Mutant(
        "contract_needed_output_inverted",
        "mdt/contracts.py",
        "if declared is not None and output not in declared:",
        "if declared is not None and output in declared:",
        CONTRACTS,
    ),
    # ---- checkpoints
    Mutant(
        "checkpoint_step_off_by_one",
        "mdt/checkpoint.py",
        '"step": str(step), "recipe": recipe',
        '"step": str(step + 1), "recipe": recipe',
        CHECKPOINTS,
    ),
    Mutant("checkpoint_torch_rng_not_restored", "mdt/checkpoint.py", '    torch.set_rng_state(tensors["rng/torch"])\n', "\n", CHECKPOINTS),
    Mutant(
        "checkpoint_newest_is_oldest",
        "mdt/checkpoint.py",
        "return [p for _, p in sorted(found)]",
        "return [p for _, p in sorted(found, reverse=True)]",
        CHECKPOINTS,
    ),
    Mutant(
        "checkpoint_method_state_tensors_lost",
        "mdt/checkpoint.py",
        'if set(value) == {"tensor"} and value["tensor"] in tensors:',
        "if False:",
        (*CHECKPOINTS, "tests/test_cyclegan.py"),
    ),
    Mutant(
        "checkpoint_shape_check_off",
        "mdt/checkpoint.py",
        "        if tuple(tensor.shape) != tuple(own[key].shape):\n",
        "        if False:\n",
        CHECKPOINTS,
    ),
    Mutant(
        "checkpoint_prune_keeps_one_more",
        "mdt/checkpoint.py",
        "for old in list_checkpoints(directory)[:-keep]:",
        "for old in list_checkpoints(directory)[:-keep - 1]:",
        CHECKPOINTS,
    ),
    Mutant(
        "checkpoint_optimizer_state_dropped",
        "mdt/checkpoint.py",
        "            flat, structures[name] = flatten_optimizer(name, state)\n",
        "            flat, structures[name] = flatten_optimizer(name, {**state, 'state': {}})\n",
        CHECKPOINTS,
    ),
    # ---- export
    Mutant(
        "export_labels_metadata_empty",
        "mdt/export.py",
        '"mdt.labels": schemas_to_json(components.schemas)',
        '"mdt.labels": "[]"',
        EXPORT,
    ),
    Mutant(
        "export_fixed_batch",
        "mdt/export.py",
        "dynamic_shapes=tuple({0: batch} for _ in example)",
        "dynamic_shapes=tuple({} for _ in example)",
        EXPORT,
    ),
    Mutant("export_torchscript_names_dropped", "mdt/export.py", '{**about, "inputs": inputs, "outputs": outputs}', "about", EXPORT),
    # ---- losses
    Mutant("loss_weight_ignored", "mdt/loss.py", "total = total + loss.weight_at(step) * value", "total = total + value", STARGAN),
    Mutant(
        "wgan_critic_sign",
        "plugins/mdt_stargan/losses.py",
        'return real + fake, {"real": real, "fake": fake}',
        'return real - fake, {"real": real, "fake": fake}',
        STARGAN,
    ),
    Mutant(
        "gradient_penalty_not_centred",
        "plugins/mdt_stargan/losses.py",
        "return ((norm - 1) ** 2).mean()",
        "return (norm ** 2).mean()",
        STARGAN,
    ),
    Mutant("gradient_penalty_mix", "plugins/mdt_stargan/losses.py", "(1 - alpha) * fake.detach()", "alpha * fake.detach()", STARGAN),
    Mutant(
        "generator_classification_on_source_labels",
        "plugins/mdt_stargan/losses.py",
        "state.encoder.classification_loss(state.fake_logits, state.target_labels, state.source)",
        "state.encoder.classification_loss(state.fake_logits, state.labels, state.source)",
        STARGAN,
    ),
    Mutant(
        "cycle_l1_squared",
        "plugins/mdt_stargan/losses.py",
        "return (real - reconstruction).abs().mean(), {}",
        "return (real - reconstruction).pow(2).mean(), {}",
        STARGAN,
    ),
    Mutant(
        "nonsaturating_fake_sign",
        "plugins/mdt_stargan_v2/losses.py",
        "F.softplus(fake_logits).mean()",
        "F.softplus(-fake_logits).mean()",
        STARGAN_V2,
    ),
    Mutant("r1_without_half", "plugins/mdt_stargan_v2/losses.py", "return 0.5 * squared.mean()", "return squared.mean()", STARGAN_V2),
    Mutant(
        "style_reconstruction_squared",
        "plugins/mdt_stargan_v2/losses.py",
        "return (predicted - target).abs().mean(), {}",
        "return (predicted - target).pow(2).mean(), {}",
        STARGAN_V2,
    ),
    Mutant(
        "diversity_weight_decay_late",
        "plugins/mdt_stargan_v2/losses.py",
        "1.0 - step / self.decay_iterations",
        "1.0 - (step + 1) / self.decay_iterations",
        STARGAN_V2,
    ),
    Mutant(
        "lsgan_discriminator_without_half",
        "plugins/mdt_cyclegan/losses.py",
        "loss_a = 0.5 * ((real_a - 1).pow(2).mean() + fake_a.pow(2).mean())",
        "loss_a = (real_a - 1).pow(2).mean() + fake_a.pow(2).mean()",
        CYCLEGAN,
    ),
    Mutant(
        "lsgan_generator_target_zero",
        "plugins/mdt_cyclegan/losses.py",
        "loss_a, loss_b = (fake_a - 1).pow(2).mean(), (fake_b - 1).pow(2).mean()",
        "loss_a, loss_b = fake_a.pow(2).mean(), (fake_b - 1).pow(2).mean()",
        CYCLEGAN,
    ),
    Mutant(
        "paired_l1_crossed",
        "plugins/mdt_cyclegan/losses.py",
        "(other_b - real_b).abs().mean()",
        "(other_b - real_a).abs().mean()",
        CYCLEGAN,
    ),
    Mutant(
        "attention_mean_summed",
        "plugins/mdt_ganimation/losses.py",
        "return sum(m.mean() for m in masks), {}",
        "return sum(m.sum() for m in masks), {}",
        GANIMATION,
    ),
    Mutant(
        "total_variation_one_direction",
        "plugins/mdt_ganimation/losses.py",
        "(m[..., :, 1:] - m[..., :, :-1]).abs().sum() + (m[..., 1:, :] - m[..., :-1, :]).abs().sum()",
        "2 * (m[..., :, 1:] - m[..., :, :-1]).abs().sum()",
        GANIMATION,
    ),
    # ---- metrics
    Mutant(
        "preservation_keeps_changed_pixels",
        "plugins/mdt_metrics/counterfactual.py",
        "kept = ((truth - inputs).abs().amax(dim=1, keepdim=True) <= 1 / 255)",
        "kept = ((truth - inputs).abs().amax(dim=1, keepdim=True) >= 0)",
        METRICS,
    ),
    Mutant(
        "accuracy_every_label_read",
        "plugins/mdt_metrics/accuracy.py",
        "whole = (right | ~asked).all(dim=1)",
        "whole = right.all(dim=1)",
        METRICS,
    ),
    Mutant(
        "accuracy_copies_counted",
        "plugins/mdt_metrics/accuracy.py",
        "asked = t.asked(schema) & t.changed[:, None]",
        "asked = t.asked(schema)",
        METRICS,
    ),
    Mutant(
        "cycle_counts_unchanged_inputs",
        "plugins/mdt_metrics/cycle.py",
        "                if not t.changed[i]:\n                    continue",
        "                if False:\n                    continue",
        METRICS,
    ),
    Mutant(
        "diversity_pairs_summed",
        "plugins/mdt_metrics/diversity.py",
        "return torch.stack([distance(outputs[i], outputs[j]) for i, j in pairs]).mean(0)",
        "return torch.stack([distance(outputs[i], outputs[j]) for i, j in pairs]).sum(0)",
        METRICS,
    ),
    Mutant(
        "diversity_first_pair_only",
        "plugins/mdt_metrics/diversity.py",
        "pairs = list(itertools.combinations(range(outputs.shape[0]), 2))",
        "pairs = list(itertools.combinations(range(outputs.shape[0]), 2))[:1]",
        METRICS,
    ),
    Mutant(
        "stargan_v2_fid_task_mean_over_targets",
        "plugins/mdt_metrics/frechet.py",
        'values[f"fid/{target.title}"] = sum(f for f, _ in scores.values()) / len(scores)',
        'values[f"fid/{target.title}"] = sum(f for f, _ in scores.values()) / len(evaluation.targets)',
        METRICS,
    ),
    Mutant("kid_biased", "plugins/mdt_metrics/distances.py", "/ (m * (m - 1))", "/ (m * m)", METRICS),
    Mutant(
        "covariance_biased",
        "plugins/mdt_metrics/distances.py",
        "return mean, centred.T @ centred / (x.shape[0] - 1)",
        "return mean, centred.T @ centred / x.shape[0]",
        METRICS,
    ),
    Mutant("fid_trace_root_once", "plugins/mdt_metrics/distances.py", "- 2 * trace_root)", "- trace_root)", METRICS),
    Mutant(
        "real_features_of_every_image",
        "plugins/mdt_metrics/features.py",
        "keep = target.holds(schema, labels)",
        "keep = torch.ones_like(target.holds(schema, labels))",
        METRICS,
    ),
    Mutant(
        "kid_reported_for_other_target",
        "plugins/mdt_metrics/frechet.py",
        'values[f"fid/{target.title}"], values[f"kid/{target.title}"] = fids[-1], kids[-1]',
        'values[f"fid/{target.title}"], values[f"kid/{target.title}"] = fids[-1], kids[0]',
        METRICS,
    ),
    Mutant(
        "translations_base_always_read",
        "plugins/mdt_metrics/pairs.py",
        "base = labels if target.dataset == source else evaluation.classifier.predict(images, target.dataset)",
        "base = evaluation.classifier.predict(images, target.dataset)",
        METRICS,
    ),
    # ---- each method's step
    Mutant(
        "stargan_generator_every_step",
        "plugins/mdt_stargan/method.py",
        "with_generator = (step + 1) % self.d_steps_per_g == 0",
        "with_generator = step % self.d_steps_per_g == 0",
        STARGAN,
    ),
    Mutant(
        "stargan_d_rate_is_g_rate",
        "plugins/mdt_stargan/method.py",
        "return {name: lr * factor for name, lr in self.base_lr.items()}",
        'return {name: self.base_lr["generator"] * factor for name in self.base_lr}',
        STARGAN,
    ),
    Mutant(
        "stargan_d_not_frozen_in_g_phase",
        "plugins/mdt_stargan/method.py",
        'step=["generator"], freeze=[self.discriminator])',
        'step=["generator"])',
        STARGAN,
        equivalent="D is not stepped in G's update, and every update clears all gradients first: only time and memory change",
    ),
    Mutant(
        "stargan_v2_mapping_not_stepped",
        "plugins/mdt_stargan_v2/method.py",
        'stepped = ["generator", "mapping_network", "style_encoder"] if',
        'stepped = ["generator", "style_encoder"] if',
        STARGAN_V2,
    ),
    Mutant(
        "stargan_v2_reference_steps_encoder",
        "plugins/mdt_stargan_v2/method.py",
        'if mode == "latent" else ["generator"]',
        'if mode == "latent" else ["generator", "style_encoder"]',
        STARGAN_V2,
    ),
    Mutant(
        "stargan_v2_targets_are_sources",
        "plugins/mdt_stargan_v2/method.py",
        "targets = domains(pairs.labels[:batch])",
        "targets = domains(source.labels[:batch])",
        STARGAN_V2,
    ),
    Mutant(
        "stargan_v2_one_reference_twice",
        "plugins/mdt_stargan_v2/method.py",
        '"reference": (pairs.images[:batch], pairs.images[half : half + batch])',
        '"reference": (pairs.images[:batch], pairs.images[:batch])',
        STARGAN_V2,
    ),
    Mutant(
        "stargan_v2_reconstruction_style_of_target",
        "plugins/mdt_stargan_v2/method.py",
        "return self._method.style_encoder(self.real, self.source_domain).float()",
        "return self._method.style_encoder(self.real, self.target_domain).float()",
        STARGAN_V2,
    ),
    Mutant(
        "cyclegan_pools_crossed",
        "plugins/mdt_cyclegan/method.py",
        "pair.pool_a.query(state.fake_a.detach()),\n                    pair.pool_b.query(state.fake_b.detach()),",
        "pair.pool_a.query(state.fake_b.detach()),\n                    pair.pool_b.query(state.fake_a.detach()),",
        CYCLEGAN,
    ),
    Mutant(
        "cyclegan_pool_never_replaces",
        "plugins/mdt_cyclegan/method.py",
        "                self.images[index] = image.clone()\n",
        "                pass\n",
        CYCLEGAN,
    ),
    Mutant(
        "cyclegan_decay_window_inverted",
        "plugins/mdt_cyclegan/method.py",
        "self.decay_fraction * self.iterations)",
        "(1 - self.decay_fraction) * self.iterations)",
        CYCLEGAN,
    ),
    Mutant(
        "cyclegan_identity_crossed",
        "plugins/mdt_cyclegan/method.py",
        "return self._run(self._pair.generator_ba, self.real_a)",
        "return self._run(self._pair.generator_ab, self.real_a)",
        CYCLEGAN,
    ),
    Mutant(
        "ganimation_composition_swapped",
        "plugins/mdt_ganimation/networks.py",
        "return Translation(mask * images + (1 - mask) * color, mask, color)",
        "return Translation(mask * color + (1 - mask) * images, mask, color)",
        GANIMATION,
    ),
    Mutant(
        "ganimation_cycle_to_target",
        "plugins/mdt_ganimation/method.py",
        "return self.generator(self.fake, self.encoder.encode(self.labels, self.source))",
        "return self.generator(self.fake, self.encoder.encode(self.target_labels, self.source))",
        GANIMATION,
    ),
    Mutant(
        "ganimation_strength_from_zero",
        "plugins/mdt_ganimation/method.py",
        "return self.generate(images, base + strength * (target - base), dataset)",
        "return self.generate(images, strength * target, dataset)",
        GANIMATION,
    ),
    # ---- the update every method performs, and its schedule
    Mutant(
        "update_freeze_never_released",
        "mdt/update.py",
        "            for network in freeze:\n                network.requires_grad_(True)",
        "            for network in freeze:\n                network.requires_grad_(False)",
        UPDATE,
    ),
    Mutant(
        "update_last_state_only",
        "mdt/update.py",
        "for prefix, state in states.items():",
        "for prefix, state in list(states.items())[-1:]:",
        UPDATE,
    ),
    Mutant(
        "update_weight_logged_at_step_zero",
        "mdt/update.py",
        'values[f"weight/{name}"] = loss.weight_at(self.step)',
        'values[f"weight/{name}"] = loss.weight_at(0)',
        UPDATE,
    ),
    Mutant("update_rates_not_set", "mdt/update.py", '                group["lr"] = rate', "                pass", UPDATE),
    Mutant("update_eval_mode_kept", "mdt/update.py", "                network.train()", "                pass", UPDATE),
    Mutant("schedule_window_not_clamped", "mdt/schedule.py", "    window = min(window, iterations)\n", "\n", UPDATE),
    # ---- translation
    Mutant(
        "translate_to_ignored_for_known_inputs",
        "plugins/mdt_stargan/method.py",
        "target = set_labels(schema, base, {labels_to[n]: v for n, v in to.items()})\n        in_eval_mode(self.generator)",
        "target = base\n        in_eval_mode(self.generator)",
        TRANSLATE,
    ),
    Mutant(
        "translate_from_ignored",
        "plugins/mdt_stargan/method.py",
        "        return set_labels(schema, base, names)\n",
        "        return base\n",
        TRANSLATE,
    ),
]


def tracked_copy(destination: Path) -> None:
    """The files git tracks, and the working tree's changes to them, copied to ``destination``."""
    listed = (
        subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, what failed) for the tests run in ``copy``:
    the first failing test's id, or the output's last lines when none is named."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(copy), str(copy / "plugins")]), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    lines = (done.stdout + done.stderr).strip().splitlines()
    failed = [line.split(" - ")[0].split(maxsplit=1)[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    what = failed[0] if failed else "\n".join(lines[-3:])
    return ("passed" if done.returncode == 0 else "failed"), time.perf_counter() - start, what


def check_applies(copy: Path, mutant: Mutant) -> str:
    text = (copy / mutant.path).read_text()
    found = text.count(mutant.before)
    if found != 1:
        raise SystemExit(f"mutant {mutant.name}: its line occurs {found} times in {mutant.path} (expected once); update the mutant")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the selections unmutated first")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant's tests (a timeout counts as killed)")
    args = parser.parse_args()
    names = {m.name for m in MUTANTS}
    if len(names) != len(MUTANTS):
        raise SystemExit("two mutants share a name")
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - names
    if unknown:
        raise SystemExit(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    console = Console(width=None if sys.stdout.isatty() else 200)  # a log keeps the table's columns whole
    if args.list:
        for m in chosen:
            console.print(f"{m.name:45} {m.path}{'  (equivalent)' if m.equivalent else ''}", markup=False, soft_wrap=True)
        return
    with tempfile.TemporaryDirectory(prefix="mdt-mutation-") as folder:
        copy = Path(folder)
        tracked_copy(copy)
        for m in chosen:
            check_applies(copy, m)
        if not args.skip_baseline:
            for selection in dict.fromkeys(m.tests for m in chosen):
                outcome, seconds, tail = run_tests(copy, selection, args.timeout)
                console.print(f"baseline {' '.join(selection)}: {outcome} ({seconds:.0f} s)", markup=False)
                if outcome != "passed":
                    raise SystemExit(f"the unmutated code fails its tests; fix that first:\n{tail}")
        table = Table(title=f"mutants on {platform.node()} ({os.cpu_count()} CPUs)")
        for column in ("mutant", "file", "result", "caught by", "s"):
            table.add_column(column)
        killed, survivors, equivalents = 0, [], []
        for m in chosen:
            original = check_applies(copy, m)
            (copy / m.path).write_text(original.replace(m.before, m.after))
            try:
                outcome, seconds, caught_by = run_tests(copy, m.tests, args.timeout)
            finally:
                (copy / m.path).write_text(original)
            if m.equivalent:
                result = f"equivalent ({'killed' if outcome != 'passed' else 'survived'})"
                equivalents.append(m)
            elif outcome == "passed":
                result = "SURVIVED"
                survivors.append(m)
            else:
                result = "killed" + (" (timeout)" if outcome == "timeout" else "")
                killed += 1
            caught_by = caught_by.removeprefix("tests/") if outcome == "failed" else ""
            table.add_row(m.name, m.path, result, caught_by, f"{seconds:.0f}")
            console.print(f"{m.name}: {result} ({seconds:.0f} s){' by ' + caught_by if caught_by else ''}", markup=False, soft_wrap=True)
        console.print(table)
        counted = len(chosen) - len(equivalents)
        score = killed / counted if counted else 1.0
        console.print(f"killed {killed} of {counted} mutants ({score:.1%}); {len(equivalents)} equivalent, not counted", markup=False)
        for m in survivors:
            console.print(f"survived: {m.name} ({m.path}): {m.before.strip()!r} -> {m.after.strip()!r}", markup=False)
        for m in equivalents:
            console.print(f"equivalent: {m.name}: {m.equivalent}", markup=False)


if __name__ == "__main__":
    main()
