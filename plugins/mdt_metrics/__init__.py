"""Built-in plugin: the judge classifier and the metrics of ``mdt eval`` (and of a recipe's ``[metrics]``)."""

import mdt
from mdt_metrics.accuracy import TranslationAccuracy
from mdt_metrics.classifier import TimmClassifier
from mdt_metrics.counterfactual import CounterfactualError
from mdt_metrics.cycle import CycleError
from mdt_metrics.diversity import Diversity
from mdt_metrics.frechet import FrechetDistance
from mdt_metrics.label_reading import LabelReading


@mdt.hookimpl
def register_components(register):
    register("classifier", "timm", TimmClassifier)
    register("metric", "translation_accuracy", TranslationAccuracy)
    register("metric", "label_reading", LabelReading)
    register("metric", "cycle_error", CycleError)
    register("metric", "fid", FrechetDistance)
    register("metric", "diversity", Diversity)
    register("metric", "counterfactual", CounterfactualError)
