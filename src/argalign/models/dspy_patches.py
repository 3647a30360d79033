"""Two memoized DSPy lookups that cost more CPU per LM call than the rest of argalign.

Profiled in ``bench/throughput.py`` (DSPy 3.4), one LM call spent most of its Python time in
two places that recompute the same answer on every call:

- ``dspy.clients.model_metadata.model_info``: for a model name the model catalog does not
  know (every ``openai/<alias>`` of a local server or a vLLM pool), a scan of the whole
  catalog, three times per call (capabilities once, the cost estimate twice). The catalog is
  loaded once per process and never changes, so the answer for a (provider, model,
  namespaces) key never changes either: it is computed once and a copy handed out, as the
  original does.
- ``dspy.adapters.utils.serialize_for_json``: a new pydantic ``TypeAdapter`` for every input
  field of every call (about 15 per call). A TypeAdapter is reusable and thread-safe; one per
  type is kept (the same holds for the TypeAdapters ``parse_value`` builds when it reads a reply).

:func:`install` swaps the module-level names DSPy calls for memoized ones; the results are
the originals' (``tests/test_dspy_patches.py``). It is idempotent and does nothing (with a
warning) when DSPy's layout is not the expected one; ``pyproject.toml`` pins DSPy < 3.5.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_MAX_TYPES = 1024
_lock = threading.Lock()
_installed = False


def memoize_model_info(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``model_info(provider, model, *, namespaces=None)`` computed once per key; a deep copy
    is returned each time, as the original returns a fresh copy."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}

    @functools.wraps(original)
    def model_info(provider: Any, model: Any, *, namespaces: Any = None) -> dict[str, Any]:
        key = (provider, model, None if namespaces is None else tuple(namespaces))
        info = found.get(key)
        if info is None:
            info = found[key] = original(provider, model, namespaces=namespaces)
        return copy.deepcopy(info)

    return model_info


def memoize_type_adapter(type_adapter: type) -> Callable[..., Any]:
    """A drop-in for ``pydantic.TypeAdapter(tp)`` that builds one adapter per (hashable) type."""
    cached = functools.lru_cache(maxsize=_MAX_TYPES)(type_adapter)

    @functools.wraps(type_adapter, updated=())
    def make(tp: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return type_adapter(tp, *args, **kwargs)
        try:
            hash(tp)
        except TypeError:
            return type_adapter(tp)
        return cached(tp)

    make.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return make


def install() -> bool:
    """Memoize the two lookups in the DSPy modules that call them; True when they are in place."""
    global _installed
    with _lock:
        if _installed:
            return True
        try:
            from dspy.adapters import utils as adapter_utils
            from dspy.clients import capabilities, costs, model_metadata
        except ImportError as e:  # another DSPy layout: run unpatched, only slower
            log.warning("DSPy lookups not memoized (%s): each LM call costs more CPU", e)
            return False
        modules = (model_metadata, capabilities, costs)
        if not all(callable(getattr(m, "model_info", None)) for m in modules) or \
                not callable(getattr(adapter_utils, "TypeAdapter", None)):
            log.warning("DSPy lookups not memoized (unexpected DSPy layout): each LM call costs "
                        "more CPU")
            return False
        model_info = memoize_model_info(model_metadata.model_info)
        for module in modules:
            module.model_info = model_info
        adapter_utils.TypeAdapter = memoize_type_adapter(adapter_utils.TypeAdapter)
        _installed = True
        return True
