"""``dataclasses`` under the names two modules still import (``record`` is ``dataclass``).

Kept only until guard/options.py and commands/install.py import ``dataclasses`` themselves;
delete it then.
"""

from dataclasses import FrozenInstanceError, field, replace
from dataclasses import dataclass as record

__all__ = ["FrozenInstanceError", "field", "record", "replace"]
