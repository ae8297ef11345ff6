"""The public surface: what each public module exports, and where from."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC_MODULES = ["bridge", "bridge.hub", "bridge.from_thread", "bridge.wsgi", "bridge.testing"]


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_all_is_a_tuple_naming_what_the_module_defines(modname: str) -> None:
    module = importlib.import_module(modname)
    assert isinstance(module.__all__, tuple)
    for name in module.__all__:
        assert hasattr(module, name), f"{modname}.__all__ names missing {name}"
    ours = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (
            # a submodule is an attribute once anything imported it: only
            # those re-exported (in __all__) count
            name in module.__all__
            if inspect.ismodule(value)
            else getattr(value, "__module__", "").startswith("bridge")
        )
    }
    assert ours == set(module.__all__)


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_public_classes_report_their_public_module(modname: str) -> None:
    module = importlib.import_module(modname)
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            owner = importlib.import_module(value.__module__)
            assert getattr(owner, name) is value
            assert not value.__module__.split(".")[-1].startswith("_")


def test_each_public_name_comes_from_exactly_one_public_module() -> None:
    seen: dict[int, str] = {}
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.ismodule(value):
                continue
            assert id(value) not in seen, f"{name} exported by {seen.get(id(value))} and {modname}"
            seen[id(value)] = modname
