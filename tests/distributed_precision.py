"""Run under ``torchrun``: settles ``precision = "auto"`` on a CPU whose bf16 timing is
made to differ by rank (rank 0 measures bf16 2x as fast, the others 0.5x), and writes
what each process chose to OUT/precision_rank<R>.txt."""

import os
import sys

os.environ.setdefault("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")

import torch

from mdt import distributed, engine, precision
from mdt.plugins import load_plugins
from mdt.recipe import load_recipe

recipe_path, out = sys.argv[1], sys.argv[2]
topology = distributed.from_environment()
distributed.initialise(topology, "cpu")
precision._cpu_has = lambda torch_query, flag: flag == "avx512_bf16"  # avx512_bf16 without AMX
precision.bf16_convolution_speedup = lambda: 2.0 if topology.rank == 0 else 0.5
recipe = load_recipe(recipe_path, [], load_plugins().registry)  # precision: "auto", the default
line = engine._choose_precision(recipe, [], torch.device("cpu"), topology)
with open(os.path.join(out, f"precision_rank{topology.rank}.txt"), "w") as f:
    f.write(f"{recipe.run.precision}\n{line}\n")
torch.distributed.barrier()
torch.distributed.destroy_process_group()  # no process leaves while another still talks to it
