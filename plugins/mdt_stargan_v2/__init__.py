"""Built-in plugin: StarGAN v2's networks, losses, training method and importer."""

import mdt
from mdt_stargan_v2.importer import stargan_v2_command
from mdt_stargan_v2.landmarks import FanFacePoints
from mdt_stargan_v2.losses import (
    DiversitySensitive,
    NonSaturatingAdversarial,
    R1Penalty,
    StyleReconstruction,
)
from mdt_stargan_v2.method import StarGANv2
from mdt_stargan_v2.networks import (
    MappingNetwork,
    StarGANv2Discriminator,
    StarGANv2Generator,
    StyleEncoder,
)


@mdt.hookimpl
def register_components(register):
    register(
        "kind",
        "mapping_network",
        "a network from noise to a style per domain: forward(latent (B, latent_dim), domains (B,)) -> (B, style_dim)",
    )
    register("kind", "style_encoder", "a network from an image to its style in a domain: forward(images, domains (B,)) -> (B, style_dim)")
    register("generator", "stargan_v2", StarGANv2Generator)
    register("mapping_network", "stargan_v2", MappingNetwork)
    register("style_encoder", "stargan_v2", StyleEncoder)
    register("discriminator", "stargan_v2", StarGANv2Discriminator)
    register("loss", "nonsaturating", NonSaturatingAdversarial)
    register("loss", "r1", R1Penalty)
    register("loss", "style_reconstruction", StyleReconstruction)
    register("loss", "diversity", DiversitySensitive)
    register("method", "stargan_v2", StarGANv2)
    register("importer", "stargan-v2", stargan_v2_command)
    register("landmarks", "fan", FanFacePoints)
