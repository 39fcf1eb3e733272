"""Built-in plugin: metrics run at the end of training (and by ``mdt eval``)."""

import mdt
from mdt_metrics.accuracy import TranslationAccuracy
from mdt_metrics.diversity import Diversity


@mdt.hookimpl
def register_components(register):
    register("metric", "translation_accuracy", TranslationAccuracy)
    register("metric", "diversity", Diversity)
