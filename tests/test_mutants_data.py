"""multi_digits checks written against surviving mutants of ``make mutate`` (docs/testing.md)."""

from __future__ import annotations

import pytest
import torch

from rw_mtl.data.multi_digits import MultiTaskTensorDataset


def test_a_task_with_a_target_missing_is_refused_word_for_word():
    with pytest.raises(ValueError, match="^every task needs one target per input$"):
        MultiTaskTensorDataset(torch.zeros(3, 1, 8, 8), {"digit0": torch.zeros(3), "digit1": torch.zeros(2)})
