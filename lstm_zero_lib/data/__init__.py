"""Seeded synthetic data sets used by the chapters.

Every generator takes a ``seed`` and is deterministic on CPU, so a chapter that calls it
gets the same numbers on every run. Each data set lives in a module of its own.
"""

from __future__ import annotations

from .variable_length import SequenceBatch, make_variable_length_task

__all__ = ["SequenceBatch", "make_variable_length_task"]
