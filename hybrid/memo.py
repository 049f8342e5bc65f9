"""The one switch for every memo of the analytic and sizing paths.

A module that memoises registers how to forget it (:func:`memoised` wraps a function in an
``lru_cache`` and registers it; :func:`on_clear` registers any other forgetting, e.g. a spec's
cached lookups). :func:`clear_memos` forgets them all: what "cold" means in ``bench/``, and what a
test checks leaves no memo behind.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_CLEARERS: list[Callable[[], None]] = []


def on_clear(clear: Callable[[], None]) -> Callable[[], None]:
    """Register ``clear`` to run on :func:`clear_memos`; returns it."""
    _CLEARERS.append(clear)
    return clear


def memoised(maxsize: int) -> Callable[[_F], _F]:
    """``functools.lru_cache(maxsize)``, registered with :func:`clear_memos`."""

    def wrap(fn: _F) -> _F:
        cached = lru_cache(maxsize=maxsize)(fn)
        on_clear(cached.cache_clear)
        return cached  # type: ignore[return-value]

    return wrap


def clear_memos() -> None:
    """Forget every registered memo."""
    for clear in _CLEARERS:
        clear()
