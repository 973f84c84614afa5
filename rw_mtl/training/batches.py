"""Batch plumbing shared by the step and evaluation: single-input batches ``{"inputs", "targets"}`` and
multi-input ones (every task its own inputs: ``{task: {"inputs", "targets"}}``), and endless iterators
for the extra batches some methods draw each step (validation batches, extra training batches)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from torch import Tensor


def inputs_by_task(
    batch: dict, task_names: Sequence[str], multi_input: bool
) -> list[tuple[Tensor, list[str]]]:
    """(inputs, the tasks predicted from them): one pair, or one per task with multi-input data."""
    if multi_input:
        return [(batch[name]["inputs"], [name]) for name in task_names]
    return [(batch["inputs"], list(task_names))]


def targets_of(batch: dict, task_names: Sequence[str], multi_input: bool) -> dict[str, Tensor]:
    """Each task's targets in ``batch``."""
    if multi_input:
        return {name: batch[name]["targets"][name] for name in task_names}
    return batch["targets"]


def endless(loader: Iterable[dict]) -> Iterator[dict]:
    """Batches of ``loader`` forever, re-iterating it (and re-shuffling, if it shuffles) at each pass."""
    while True:
        yield from loader


def endless_combined(loaders: Mapping[str, Iterable[dict]]) -> Iterator[dict]:
    """{task: batch} dicts forever from one loader per task (multi-input data)."""
    iterators = {name: endless(loader) for name, loader in loaders.items()}
    while True:
        yield {name: next(iterator) for name, iterator in iterators.items()}


def split_in_halves(batch: dict) -> tuple[dict, dict]:
    """The first ⌊n/2⌋ and the other samples of every tensor in ``batch`` (nested dicts, lists and tuples
    kept; a multi-input task's tensors are split at their own n), for a method that reads the step
    batch's two halves as independent samples (``GradWeighting.batch_halves``)."""
    sizes = {len(leaf) for leaf in _tensors(batch)}
    if not sizes or min(sizes) < 2:
        raise ValueError(
            "a method that reads the two halves of the step's batch needs at least 2 samples per batch; "
            "raise dataset.datamodule.batch_size or set weighting.grad.hparams.sampling=batches"
        )
    return _sliced(batch, first=True), _sliced(batch, first=False)


def _tensors(tree) -> Iterator[Tensor]:
    """The tensors of ``tree`` that have a sample dimension."""
    if isinstance(tree, Tensor):
        if tree.dim() > 0:
            yield tree
    elif isinstance(tree, Mapping):
        for value in tree.values():
            yield from _tensors(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _tensors(value)


def _sliced(tree, first: bool):
    if isinstance(tree, Tensor) and tree.dim() > 0:
        middle = len(tree) // 2
        return tree[:middle] if first else tree[middle:]
    if isinstance(tree, Mapping):
        return {key: _sliced(value, first) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_sliced(value, first) for value in tree)
    return tree
