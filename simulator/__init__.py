"""A realistic, deterministic world of trafficking victims and the providers' exports.

`simulate(out, seed, scale)` writes native exports to out/landing/ and the ground truth
apart in out/truth/. Parameters are data: simulator/world.yaml.
"""

from simulator.run import simulate

__all__ = ["simulate"]
