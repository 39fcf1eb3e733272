"""Built-in plugin: label encoders."""

import mdt
from mdt_labels.encoders import MaskVector, MultiHot, OneHot


@mdt.hookimpl
def register_components(register):
    register("label_encoder", "multi_hot", MultiHot)
    register("label_encoder", "one_hot", OneHot)
    register("label_encoder", "mask_vector", MaskVector)
