"""Task types: each bundles a loss, its torchmetrics metrics and which direction of each metric is better."""

from rw_mtl.tasks.base import Task
from rw_mtl.tasks.classification import ClassificationTask
from rw_mtl.tasks.dense import DepthTask, SemanticSegmentationTask, SurfaceNormalTask

__all__ = ["ClassificationTask", "DepthTask", "SemanticSegmentationTask", "SurfaceNormalTask", "Task"]
