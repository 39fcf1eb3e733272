"""Built-in plugin: StarGAN's networks, losses and training method."""

import mdt
from mdt_stargan.importer import stargan_v1_command
from mdt_stargan.losses import (
    CycleReconstruction,
    DomainClassification,
    GradientPenalty,
    IdentityL1,
    TranslationSource,
    WassersteinAdversarial,
)
from mdt_stargan.method import StarGAN
from mdt_stargan.networks import StarGANDiscriminator, StarGANGenerator


@mdt.hookimpl
def register_components(register):
    register("generator", "stargan", StarGANGenerator)
    register("discriminator", "stargan", StarGANDiscriminator)
    register("loss", "wgan", WassersteinAdversarial)
    register("loss", "gradient_penalty", GradientPenalty)
    register("loss", "domain_classification", DomainClassification)
    register("loss", "cycle_l1", CycleReconstruction)
    register("loss", "identity_l1", IdentityL1)
    register("loss", "translation_source", TranslationSource)
    register("method", "stargan", StarGAN)
    register("importer", "stargan-v1", stargan_v1_command)
