"""Built-in plugin: datasets (CelebA, RaFD, folders, CSV, three synthetic sets), augmentation, samplers and the image modality."""

import mdt
from mdt_datasets.augment import StandardAugmentation
from mdt_datasets.celeba import CelebA
from mdt_datasets.folders import CSVAttributes, DomainFolders, RaFD
from mdt_datasets.image_modality import Images
from mdt_datasets.samplers import BalancedOrder, BalancedPairs, DomainOrder, EpochOrder
from mdt_datasets.synthetic import SyntheticFaces
from mdt_datasets.synthetic_celeba import SyntheticCelebA
from mdt_datasets.synthetic_rafd import SyntheticRaFD


@mdt.hookimpl
def register_components(register):
    register("dataset", "celeba", CelebA)
    register("dataset", "rafd", RaFD)
    register("dataset", "domain_folders", DomainFolders)
    register("dataset", "csv_attributes", CSVAttributes)
    register("dataset", "synthetic_faces", SyntheticFaces)
    register("dataset", "synthetic_celeba", SyntheticCelebA)
    register("dataset", "synthetic_rafd", SyntheticRaFD)
    register("augmentation", "standard", StandardAugmentation)
    register("sampler", "shuffled", EpochOrder)
    register("sampler", "balanced", BalancedOrder)
    register("sampler", "balanced_pairs", BalancedPairs)
    register("sampler", "domain", DomainOrder)
    register("modality", "image", Images)
