"""A Griffe extension: a class's parameters read from its own ``__init__`` without listing inherited members.

Griffe's ``Class.parameters`` looks ``__init__`` up in ``all_members``, which wraps every
member of every base class in a new alias each time; the Google docstring parser asks for
it once per documented argument, so for the API pages' 140 classes that was about 0.3 s of
each build. A class that defines ``__init__`` itself (every zij optimizer) has the same
answer in its own members, since they take precedence over inherited ones; other classes
keep Griffe's lookup. Listed under the python handler's ``extensions`` in ``mkdocs.yml``;
loading it installs the shortcut (once, for the process).
"""

from __future__ import annotations

import griffe

_INHERITED = griffe.Class.parameters


def own_init_parameters(cls: griffe.Class) -> griffe.Parameters:
    """``cls.parameters`` as Griffe computes it, from ``cls``'s own ``__init__`` where it has one."""
    init = cls.members.get("__init__")
    if init is not None:
        return init.parameters
    return _INHERITED.fget(cls)


class OwnInitParameters(griffe.Extension):
    """Installs :func:`own_init_parameters` as ``griffe.Class.parameters``."""

    def __init__(self) -> None:
        super().__init__()
        if griffe.Class.parameters is _INHERITED:
            griffe.Class.parameters = property(own_init_parameters, doc=_INHERITED.__doc__)
