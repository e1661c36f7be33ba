"""A small registry of named things, lazily imported, with "did you mean" on a typo.

Entries are registered either as an object or as ``"module:attribute"`` strings that are
imported only when the entry is first used, so heavy libraries stay out of import time.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from hwnas.errors import NotFoundError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, obj: T | str) -> None:
        """Register ``obj`` (or a lazy ``"module:attribute"`` string) under ``name``."""
        self._entries[name] = obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def deco(o: T) -> T:
            self._entries[name] = o
            return o

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        try:
            entry = self._entries[name]
        except KeyError:
            raise NotFoundError(self.unknown_message(name)) from None
        if isinstance(entry, str) and ":" in entry:
            module, _, attr = entry.partition(":")
            loaded: T = getattr(importlib.import_module(module), attr)
            self._entries[name] = loaded
            return loaded
        return entry  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return (f"unknown {self.kind} '{name}'.{hint} "
                f"Known: {', '.join(self.names()) or '(none)'}")
