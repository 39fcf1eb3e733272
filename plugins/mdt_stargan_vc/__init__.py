"""Built-in plugin: StarGAN-VC voice conversion (Kameoka et al. 2018): speech datasets
(VCTK, folders of speakers, an espeak-ng quickstart corpus), the ``speech`` modality
(WORLD analysis and synthesis), the paper's gated-CNN networks and its method.

It needs the ``audio`` extra (pyworld, pysptk, soundfile, scipy); nothing in mdt's core
names it.
"""

import mdt
from mdt_stargan_vc.datasets import VCTK, EspeakSpeech, SpeakerFolders
from mdt_stargan_vc.judge import SpeakerJudge
from mdt_stargan_vc.losses import ConversionSource
from mdt_stargan_vc.method import StarGANVC
from mdt_stargan_vc.metrics import SpeechDistortion
from mdt_stargan_vc.modality import SpeechModality
from mdt_stargan_vc.networks import VCDiscriminator, VCDomainClassifier, VCGenerator


@mdt.hookimpl
def register_components(register):
    register("kind", "domain_classifier", "a network that reads which domain (speaker) a sample is: (samples) -> logits")
    register("modality", "speech", SpeechModality)
    register("dataset", "speaker_folders", SpeakerFolders)
    register("dataset", "vctk", VCTK)
    register("dataset", "espeak_speech", EspeakSpeech)
    register("generator", "stargan_vc", VCGenerator)
    register("discriminator", "stargan_vc", VCDiscriminator)
    register("domain_classifier", "stargan_vc", VCDomainClassifier)
    register("method", "stargan_vc", StarGANVC)
    register("loss", "conversion_source", ConversionSource)
    register("metric", "speech_distortion", SpeechDistortion)
    register("classifier", "speaker", SpeakerJudge)
