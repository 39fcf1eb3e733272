"""Learning-rate schedules: a factor of a method's base rate for each update."""

from __future__ import annotations


def linear_decay(step: int, iterations: int, window: float) -> float:
    """The rate's factor for the update at 0-based ``step``: 1 until the last ``window``
    updates of ``iterations``, then falling linearly to 0 at ``step == iterations``. A
    window longer than the run is the whole run (StarGAN's paper recipe shortened with
    ``--set run.iterations=3000`` starts at its full rate, not at 3% of it); no window, no decay."""
    window = min(window, iterations)
    if window <= 0:
        return 1.0
    return max(0.0, min(1.0, (iterations - step) / window))
