"""``conversion_source``: the domain classifier C also learns that a conversion is still
its *source* speaker, −log C(c' | G(x, c)), in the discriminator phase only.

Why: in StarGAN-VC's loss sum C is trained on real clips alone, so G is rewarded for any
change that moves C's reading towards the target, and measured on the espeak corpus G
finds cheap ones: a linear generator per target speaker (the form of the parallel
least-squares conversion, which the speaker judge reads right 0.98 of the time) trained
against the plugin's D and C fools C while the judge reads only 0.32 of its conversions
as the target (benchmarks/speech_critics.py, docs/speech.md). Taught that a conversion is
still its source, C keeps looking for what G has not yet changed, and the judge reads
0.91. G's own classification loss is unchanged, so the two play a game over C's reading
of conversions, as D and G do over realness. Not in the paper; off unless a recipe names
it.
"""

from __future__ import annotations

from mdt.loss import Loss
from mdt.ranges import Weight


class ConversionSource(Loss):
    """CE(C(G(x, c)), c') for the discriminator phase: c' is each clip's own speaker. G is
    a constant there (the phase computes conversions without gradient), so only C learns."""

    reads = {"discriminator": ("encoder", "fake_logits", "labels", "source")}

    def __init__(self, weight: Weight = 1.0) -> None:
        super().__init__(weight)

    def __call__(self, phase, state):
        return state.encoder.classification_loss(state.fake_logits, state.labels, state.source), {}
