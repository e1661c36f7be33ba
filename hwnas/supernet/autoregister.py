"""Register hwnas's per-layer model classes with transformers' Auto classes, without importing
transformers (or torch) at `import hwnas`.

transformers' Auto modules import torch, so registering eagerly made `import hwnas` cost
seconds. Instead, `install()` leaves a small import hook: when transformers' own
`configuration_auto` (or `modeling_auto`) module finishes loading, the `hwnas_<family>` names
are added to its lazy mapping, next to the stock families' names, with a stand-in module that
builds the classes on first lookup. Whoever loads an exported heterogeneous subnet through the
Auto classes therefore finds them, whether transformers was imported before or after hwnas,
and nothing heavy is built while transformers is still importing itself. (This writes to the
mappings' private fields, as `register` does; `tests/test_supernet.py` checks it on every
transformers this package admits.)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType

from hwnas.supernet.families import (
    CAPITALISED,
    causal_lm_class_name,
    config_class_name,
    model_type,
)

CONFIG_AUTO = "transformers.models.auto.configuration_auto"
MODEL_AUTO = "transformers.models.auto.modeling_auto"


class _FamilyClasses(ModuleType):
    """Stands, in transformers' lazy mappings, for the module of one family's classes: the
    classes are built (importing torch and the family's modelling code) on first lookup."""

    def __init__(self, family: str) -> None:
        super().__init__(f"hwnas.supernet.hetero[{family}]")
        self._family = family

    def __getattr__(self, name: str) -> type:
        from hwnas.supernet import hetero

        if name == config_class_name(self._family):
            return hetero.config_class(self._family)
        if name == causal_lm_class_name(self._family):
            return hetero.classes(self._family)[1]
        raise AttributeError(name)


def _register_configs(module: ModuleType) -> None:
    """`AutoConfig` finds `hwnas_<family>` through transformers' own lazy mapping."""
    mapping = module.CONFIG_MAPPING
    for family in CAPITALISED:
        mapping._mapping[model_type(family)] = config_class_name(family)
        mapping._modules[model_type(family)] = _FamilyClasses(family)


def _register_models(module: ModuleType) -> None:
    """`AutoModelForCausalLM` finds the per-layer class of a `hwnas_<family>` config."""
    mapping = module.MODEL_FOR_CAUSAL_LM_MAPPING
    for family in CAPITALISED:
        mapping._model_mapping[model_type(family)] = causal_lm_class_name(family)
        mapping._reverse_config_mapping[config_class_name(family)] = model_type(family)
        mapping._modules[model_type(family)] = _FamilyClasses(family)


HOOKS: dict[str, Callable[[ModuleType], None]] = {CONFIG_AUTO: _register_configs,
                                                  MODEL_AUTO: _register_models}


class _ThenLoader(importlib.abc.Loader):
    """Runs the real loader, then `after()`; everything else is the real loader's."""

    def __init__(self, loader: importlib.abc.Loader,
                 after: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _run(self._after, module)

    def __getattr__(self, name: str) -> object:  # get_source, get_data, is_package, ...
        return getattr(self._loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it wraps the loader of the hooked modules that others find."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        hook = HOOKS.get(fullname)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _ThenLoader(spec.loader, hook)
                return spec
        return None


def _run(hook: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        hook(module)
    except Exception as e:  # never break the user's transformers import
        warnings.warn(f"hwnas could not register its per-layer model classes with "
                      f"transformers' Auto classes ({type(e).__name__}: {e}); heterogeneous "
                      "exports will not load through AutoModelForCausalLM", stacklevel=2)


def install() -> None:
    """Register now for what transformers has loaded already; hook the rest."""
    pending = False
    for module, hook in HOOKS.items():
        if module in sys.modules:
            _run(hook, sys.modules[module])
        else:
            pending = True
    if pending and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
