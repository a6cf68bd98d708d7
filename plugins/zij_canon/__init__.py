"""zij-canon: the Canon toolkit (schema, validator, renderer) and its MkDocs plugin."""

from .canon import Canon, load
from .loader import CanonError, Problem
from .models import Record

__all__ = ["Canon", "CanonError", "Problem", "Record", "load"]
