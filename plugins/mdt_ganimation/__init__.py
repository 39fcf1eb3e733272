"""Built-in plugin: GANimation (Pumarola et al. 2018) — an attention-mask generator, losses
on the masks, continuous targets and their datasets — written against mdt's plugin
interface alone, as a third party would."""

import mdt
from mdt_ganimation.datasets import CSVIntensities, SyntheticExpressions
from mdt_ganimation.labels import Continuous
from mdt_ganimation.losses import AttentionMean, AttentionSmoothness
from mdt_ganimation.method import GANimation
from mdt_ganimation.networks import AttentionGenerator


@mdt.hookimpl
def register_components(register):
    register("generator", "ganimation", AttentionGenerator)
    register("loss", "attention_mean", AttentionMean)
    register("loss", "attention_smoothness", AttentionSmoothness)
    register("label_encoder", "continuous", Continuous)
    register("dataset", "synthetic_expressions", SyntheticExpressions)
    register("dataset", "csv_intensities", CSVIntensities)
    register("method", "ganimation", GANimation)
