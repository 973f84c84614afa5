"""XTREME PAWS-X and UD-POS with a tiny BERT saved by the test: formats, first-sub-word tagging, training."""

from __future__ import annotations

import pytest
import torch

from rw_mtl.data.files import DatasetError
from rw_mtl.data.xtreme import UPOS, XtremeDataModule
from rw_mtl.train import run

from .conftest import FAST_TRAINER, compose_config
from .datasets import tiny_dataset_overrides, write_tiny_bert, write_tiny_xtreme


@pytest.mark.parametrize(
    ("dataset", "languages", "metric"),
    [("xtreme_pi", {"en", "zh", "de", "es"}, "acc"), ("xtreme_pos", {"en", "zh", "te", "vi"}, "f1")],
)
@pytest.mark.parametrize("weighting", [["weighting/loss=rlw"], ["weighting/grad=rgw"]])
def test_xtreme_trains(tmp_path, dataset, languages, metric, weighting):
    overrides = tiny_dataset_overrides(dataset, tmp_path / "data")
    config = compose_config(
        [*FAST_TRAINER, f"dataset={dataset}", *overrides, "trainer.max_epochs=1", *weighting],
        output_dir=tmp_path / "run",
    )
    results = run(config)
    assert set(results["metrics"]["test"]) == languages
    assert all(set(m) == {metric} and 0 <= m[metric] <= 100 for m in results["metrics"]["test"].values())


def test_udpos_tags_sit_on_first_subwords(tmp_path):
    root = write_tiny_xtreme(tmp_path)
    bert = write_tiny_bert(tmp_path / "bert")
    datamodule = XtremeDataModule(str(root), "udpos", ["en"], tokenizer=str(bert), max_length=16)
    datamodule.setup()
    item = datamodule.splits["train"]["en"][0]
    first_sentence = (root / "udpos" / "train-en.tsv").read_text().split("\n\n")[0].splitlines()
    labelled = item["targets"]["en"][item["targets"]["en"] != -100].tolist()
    assert labelled == [UPOS.index(line.split("\t")[1]) for line in first_sentence]
    assert item["inputs"]["input_ids"].shape == (16,)
    # "cat" is c ##a ##t in the character vocabulary: its tag is on "c" only
    assert torch.equal(
        item["inputs"]["attention_mask"][: len(labelled)], torch.ones(len(labelled), dtype=torch.long)
    )


def test_pawsx_pairs_and_errors(tmp_path):
    root = write_tiny_xtreme(tmp_path, languages=("en",))
    bert = write_tiny_bert(tmp_path / "bert")
    datamodule = XtremeDataModule(str(root), "pawsx", ["en"], tokenizer=str(bert), max_length=16)
    datamodule.setup()
    labels = [
        int(line.split("\t")[2]) for line in (root / "pawsx" / "test-en.tsv").read_text().splitlines()[1:]
    ]
    assert datamodule.splits["test"]["en"].labels.tolist() == labels
    with pytest.raises(DatasetError, match=r"train-de.tsv does not exist.*scripts/prepare_xtreme.py"):
        XtremeDataModule(str(root), "pawsx", ["en", "de"], tokenizer=str(bert))
    (root / "pawsx" / "train-en.tsv").write_text("only one column\n")
    broken = XtremeDataModule(str(root), "pawsx", ["en"], tokenizer=str(bert))
    with pytest.raises(DatasetError, match=r"train-en.tsv is malformed \(line 1"):
        broken.setup()
