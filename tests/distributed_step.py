"""One discriminator and one generator update on a fixed global batch; the gradients go
to OUT/world<N>_rank<R>.safetensors, with the generator's weights as each rank drew them. Run with plain python for one process, or under
``torchrun --nproc_per_node N`` for N processes sharing the batch."""

import os
import sys

os.environ.setdefault("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")

import torch
from mdt_stargan.method import StepState
from safetensors.torch import save_file

from mdt import distributed
from mdt.build import build
from mdt.data import Batch, collate
from mdt.engine import seed_everything
from mdt.plugins import load_plugins
from mdt.recipe import load_recipe

GLOBAL_BATCH = 8
recipe_path, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
topology = distributed.from_environment()
distributed.initialise(topology, "cpu")
registry = load_plugins().registry
overrides = [
    "run.image_size=32",
    "generator.conv_dim=8",
    "generator.residual_blocks=1",
    "discriminator.conv_dim=8",
    "discriminator.layers=3",
    "datasets.faces.size=16",
    "datasets.faces.test_size=4",
    "run.precision=fp32",
]  # the gradients are compared to fp32 arithmetic; "auto" may be bf16 here
recipe = load_recipe(recipe_path, overrides, registry)
seed_everything(topology.rank, deterministic=True)  # each rank draws its own weights: the broadcast must fix that
components = build(recipe, registry)
method = components.method
initial = {f"initial/{n}": p.detach().clone() for n, p in method.generator.named_parameters()}
if topology.distributed:
    distributed.broadcast_networks(method.networks())
    distributed.synchronise_optimizers(method.optimizers())

raw = collate([components.train_sets[0][i] for i in range(GLOBAL_BATCH)])
images = components.augmentation(raw.images, train=False)
targets = raw.labels.roll(1, dims=0)
alpha = torch.linspace(0.1, 0.9, GLOBAL_BATCH).view(-1, 1, 1, 1)
share = distributed.shard_size(GLOBAL_BATCH, topology)
part = slice(topology.rank * share, (topology.rank + 1) * share)
StepState.mix_weights = property(lambda self: alpha[part])  # the same mixing as one process would draw
batch = Batch(images[part], raw.labels[part], 0)

grads = dict(initial)
method.update_phase("discriminator", batch, targets[part])
grads.update({f"discriminator/{n}": p.grad.detach().clone() for n, p in method.discriminator.named_parameters()})
method.update_phase("generator", batch, targets[part])
grads.update({f"generator/{n}": p.grad.detach().clone() for n, p in method.generator.named_parameters()})
save_file(grads, os.path.join(out, f"world{topology.world_size}_rank{topology.rank}.safetensors"))
