"""Seeded synthetic data sets used by the chapters.

Every generator takes a ``seed`` and is deterministic on CPU, so a chapter that calls it
gets the same numbers on every run. Each data set lives in a module of its own.
"""

from __future__ import annotations

from ._base import Examples, PaddedSequences
from .attribution import AttributionTask, make_attribution_task
from .sensors import FAULTS, SENSOR_NAMES, SensorData, make_sensor_data
from .variable_length import SequenceBatch, make_variable_length_task

__all__ = [
    "FAULTS",
    "SENSOR_NAMES",
    "AttributionTask",
    "Examples",
    "PaddedSequences",
    "SensorData",
    "SequenceBatch",
    "make_attribution_task",
    "make_sensor_data",
    "make_variable_length_task",
]
