"""Plug-in points: one registry (name -> class) per kind of method.

Each kind of method — mapping, force map, prior term, model, trainer, integrator, backmapper,
metric — has a small interface (a base class in its stage's package) and one
:class:`Registry`. A method is a class in a module of that package that registers
itself with a decorator::

    @MAPPINGS.register("calpha")
    class CAlpha(FixedMapping): ...

The registry imports every module of its package the first time a name is looked up,
so a new method is one new module (plus its section of the config schema and its
tests): nothing else in the package, the command line or the rules names it. A class
registered elsewhere (a test, a user's plug-in) is found as soon as its module has
been imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from cgpipe.errors import InputError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Name -> class for one kind of method.

    Parameters
    ----------
    kind
        What the methods are, in the field's words ("mapping", "force map", ...): error
        messages name it.
    package
        The package whose modules define the built-in methods; all are imported before
        the first look-up.
    """

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._classes: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: register the class under ``name`` and set its ``name``."""

        def decorate(cls: T) -> T:
            known = self._classes.get(name)
            if known is not None and known is not cls:
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice: {known.__module__}."
                    f"{known.__qualname__} and {cls.__module__}.{cls.__qualname__}"
                )
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorate

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a toy method clean up with this)."""
        self._classes.pop(name, None)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{self.package}."):
            importlib.import_module(module.name)

    def get(self, name: str) -> T:
        """The class registered as ``name``; an unknown name is an input error naming the
        known ones."""
        self._discover()
        try:
            return self._classes[name]
        except KeyError:
            raise InputError(f"unknown {self.kind} {name!r}; known: {self.names()}") from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._discover()
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
