"""``Assistant``, ``Client`` and ``AsyncClient`` share one surface, checked by signature.

The rules, for every name in ``SHARED_METHODS``:

1. All three classes have it, with a docstring.
2. Parameters match in order, name, kind, default and annotation, except the parameters the
   HTTP API cannot carry (``LOCAL_ONLY_PARAMETERS``, which must be optional keywords of
   ``Assistant``) and those only the clients have (``REMOTE_ONLY_PARAMETERS``, which must be
   optional keywords the core lacks).
3. Return types match: ``Client`` returns what ``Assistant`` returns and ``AsyncClient`` is a
   coroutine returning the same; where ``Assistant`` streams (an async generator of ``T``),
   ``AsyncClient`` does too and ``Client`` is a generator of ``T``.
4. Nothing is left out silently: ``Assistant``'s other public methods are exactly
   ``IN_PROCESS_ONLY_METHODS``, and the clients add only ``job``, ``cancel_job`` and closing.

Behaviour (same results for the same calls) is checked against a real server in
``test_client.py``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from assistant.client import (
    IN_PROCESS_ONLY_METHODS,
    LOCAL_ONLY_PARAMETERS,
    REMOTE_ONLY_PARAMETERS,
    SHARED_METHODS,
    AsyncClient,
    Client,
)
from assistant.core import Assistant

CLIENT_EXTRAS = {
    Client: {"job", "cancel_job", "close"},
    AsyncClient: {"job", "cancel_job", "aclose"},
}


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and callable(value)
    }


def _parameters(
    method: Callable[..., object], left_out: frozenset[str]
) -> list[tuple[str, object, object, object]]:
    """(name, kind, default, annotation) of each parameter after ``self``, less ``left_out``."""
    hints = typing.get_type_hints(method)
    return [
        (parameter.name, parameter.kind, parameter.default, hints.get(parameter.name))
        for parameter in list(inspect.signature(method).parameters.values())[1:]
        if parameter.name not in left_out
    ]


def _optional_keywords(method: Callable[..., object], names: frozenset[str]) -> bool:
    parameters = inspect.signature(method).parameters
    return all(
        name in parameters
        and parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        and parameters[name].default is not inspect.Parameter.empty
        for name in names
    )


@pytest.mark.parametrize("name", SHARED_METHODS)
@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_parameters_match_the_in_process_method(name: str, client_class: type) -> None:
    local = getattr(Assistant, name)
    remote = getattr(client_class, name)
    assert remote.__doc__, f"{client_class.__name__}.{name} has no docstring"
    local_only = LOCAL_ONLY_PARAMETERS.get(name, frozenset())
    remote_only = REMOTE_ONLY_PARAMETERS.get(name, frozenset())
    assert _optional_keywords(local, local_only)
    assert _optional_keywords(remote, remote_only)
    assert not remote_only & set(inspect.signature(local).parameters)
    assert _parameters(remote, remote_only) == _parameters(local, local_only)


@pytest.mark.parametrize("name", SHARED_METHODS)
def test_return_types_match_the_in_process_method(name: str) -> None:
    local = getattr(Assistant, name)
    returned = typing.get_type_hints(local)["return"]
    sync_returned = typing.get_type_hints(getattr(Client, name))["return"]
    async_method = getattr(AsyncClient, name)
    async_returned = typing.get_type_hints(async_method)["return"]
    if inspect.isasyncgenfunction(local):
        assert typing.get_origin(returned) is AsyncIterator
        (item,) = typing.get_args(returned)
        assert inspect.isasyncgenfunction(async_method) and async_returned == returned
        assert inspect.isgeneratorfunction(getattr(Client, name))
        assert sync_returned == Iterator[item]  # type: ignore[valid-type]
    else:
        assert not inspect.iscoroutinefunction(getattr(Client, name))
        assert sync_returned == returned
        assert inspect.iscoroutinefunction(async_method) and async_returned == returned


def test_every_public_method_is_shared_or_listed_as_one_side_only() -> None:
    local_only = _public_methods(Assistant) - set(SHARED_METHODS)
    assert local_only == IN_PROCESS_ONLY_METHODS, (
        "add the new Assistant method to SHARED_METHODS (and both clients) or to "
        "IN_PROCESS_ONLY_METHODS"
    )
    for client_class, extras in CLIENT_EXTRAS.items():
        assert _public_methods(client_class) == set(SHARED_METHODS) | extras


def test_the_rules_name_real_parameters() -> None:
    assert set(LOCAL_ONLY_PARAMETERS) | set(REMOTE_ONLY_PARAMETERS) <= set(SHARED_METHODS)
    for name, parameters in LOCAL_ONLY_PARAMETERS.items():
        assert parameters <= set(inspect.signature(getattr(Assistant, name)).parameters)
