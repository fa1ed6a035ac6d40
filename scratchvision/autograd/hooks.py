"""The handle every ``register_*_hook`` returns (modules' forward hooks, tensors'
post-accumulate-grad hooks), as ``torch.utils.hooks.RemovableHandle``."""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict


class RemovableHandle:
    """``handle.remove()`` unregisters the hook (a second call does nothing); also a
    context manager that removes it on exit. It holds its hooks dict weakly, so it does
    not keep the module or tensor alive."""

    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict, on_empty=None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks)
        self.id = next(RemovableHandle._ids)
        self.on_empty = on_empty      # called when removing leaves the dict empty

    def remove(self) -> None:
        hooks = self.hooks_dict_ref()
        if hooks is not None:
            hooks.pop(self.id, None)
            if not hooks and self.on_empty is not None:
                self.on_empty()

    def __enter__(self) -> RemovableHandle:  # noqa: PYI034  (typing.Self is 3.11+)
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
