"""Warehouse backends behind one small interface; :func:`open_warehouse` picks by URL scheme."""

from stageless.warehouses.base import Relation, Warehouse
from stageless.warehouses.registry import open_warehouse, redact_url

__all__ = ["Relation", "Warehouse", "open_warehouse", "redact_url"]
