"""`hwnas supernet train`: distil the base model into its own super-network once, so that
every subnet cut from it (by the importance order: every width is a prefix) is better
without training each one.

- `config`: `TrainConfig`, the frozen value a run is made from (and resumed against);
- `data`: training documents (bundled non-evaluation passages or a user file, both through
  the 13-gram overlap guard) as fixed-length token sequences in a seeded order;
- `sampler`: the sandwich of subnets each step, biased toward the 1.1x-2x faster band;
- `view`: the subnet forward on the supernet's own parameters (masks and skipped layers);
- `checkpoint`: atomic safetensors + JSON state, so `--resume` continues exactly;
- `loop`: KL distillation from the frozen base model.
"""

from hwnas.supernet.train.config import TrainConfig
from hwnas.supernet.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
