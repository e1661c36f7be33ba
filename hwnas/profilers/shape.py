"""`ModelShape`: what layer profiling needs from a model, read from its config alone.

Layer latency does not depend on weight values, so profiling never loads weights: a
LLaMA2-7B-shaped space is profiled from its config (random weights, one layer at a time).
`profile_layers` accepts a `ModelShape` or a `Supernet`: anything `Shaped` (with `name`,
`config`, `arch`, `space` and `layer_config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hwnas.supernet.arch import ArchInfo, arch_info
from hwnas.supernet.space import SearchSpace

if TYPE_CHECKING:
    from transformers import PretrainedConfig


class Shaped(Protocol):
    """What layer profiling reads of a model: a `ModelShape` or a `Supernet`."""

    @property
    def name(self) -> str: ...
    @property
    def config(self) -> PretrainedConfig: ...
    @property
    def arch(self) -> ArchInfo: ...
    @property
    def space(self) -> SearchSpace: ...
    def layer_config(self, width: int, kv_heads: int) -> PretrainedConfig: ...


@dataclass(frozen=True)
class ModelShape:
    name: str
    config: PretrainedConfig
    arch: ArchInfo
    space: SearchSpace

    @classmethod
    def from_config(cls, config: PretrainedConfig, name: str | None = None,
                    widths: list[int] | None = None) -> ModelShape:
        arch = arch_info(config)
        return cls(name or f"{arch.family}-shape-{arch.key()}", config, arch,
                   SearchSpace.default(arch, widths=widths))

    @classmethod
    def load(cls, model: str) -> ModelShape:
        """A known model name, local directory or hub id: its config only."""
        from hwnas.supernet.models import load_config
        return cls.from_config(load_config(model), name=model)

    def layer_config(self, width: int, kv_heads: int) -> PretrainedConfig:
        from hwnas.supernet.extract import layer_config
        cfg: PretrainedConfig = layer_config(self.config, self.arch, width, kv_heads)
        return cfg
