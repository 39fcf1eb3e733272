"""Built-in plugin: CycleGAN (Zhu et al. 2017) — two generators and two discriminators per
pair of domains — written against mdt's plugin interface alone, as a third party would."""

import mdt
from mdt_cyclegan.losses import CycleConsistency, Identity, LeastSquaresAdversarial
from mdt_cyclegan.method import CycleGAN
from mdt_cyclegan.networks import PatchDiscriminator, ResnetGenerator


@mdt.hookimpl
def register_components(register):
    register("generator", "cyclegan", ResnetGenerator)
    register("discriminator", "patchgan", PatchDiscriminator)
    register("loss", "least_squares", LeastSquaresAdversarial)
    register("loss", "cycle_consistency", CycleConsistency)
    register("loss", "identity", Identity)
    register("method", "cyclegan", CycleGAN)
