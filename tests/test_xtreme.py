"""XTREME PAWS-X and UD-POS with a tiny BERT saved by the test: formats, first-sub-word tagging, training."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from seqeval.metrics import f1_score

from rw_mtl.data.files import DatasetError
from rw_mtl.data.xtreme import UPOS, XtremeDataModule, fit_sentences, read_udpos
from rw_mtl.data.xtreme_release import build, pawsx_splits
from rw_mtl.tasks import TokenClassificationTask
from rw_mtl.train import run

from .conftest import FAST_TRAINER, compose_config
from .datasets import (
    tiny_dataset_overrides,
    write_tiny_bert,
    write_tiny_pawsx_release,
    write_tiny_ud_release,
    write_tiny_xtreme,
)
from .recompute import assert_reported_metrics_are_the_checkpoints

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "prepare_xtreme.py"
_SPEC = importlib.util.spec_from_file_location("prepare_xtreme", _SCRIPT)
prepare_xtreme = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(prepare_xtreme)


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
    assert all(set(m) == {metric} for m in results["metrics"]["test"].values())
    # every language's score is the saved best model's on its own test loader, recomputed here
    assert_reported_metrics_are_the_checkpoints(results, config)


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
    root = write_tiny_xtreme(tmp_path)
    bert = write_tiny_bert(tmp_path / "bert")
    datamodule = XtremeDataModule(str(root), "pawsx", ["en"], tokenizer=str(bert), max_length=16)
    datamodule.setup()
    release = (tmp_path / "releases/x-final/en/test_2k.tsv").read_text().splitlines()[1:]
    labels = [int(line.split("\t")[3]) for line in release]
    assert datamodule.splits["test"]["en"].labels.tolist() == labels
    (root / "pawsx" / "train-de.tsv").unlink()
    with pytest.raises(DatasetError, match=r"train-de.tsv does not exist.*scripts/prepare_xtreme.py"):
        XtremeDataModule(str(root), "pawsx", ["en", "de"], tokenizer=str(bert))
    (root / "pawsx" / "train-en.tsv").write_text("only one column\n")
    with pytest.raises(DatasetError, match=r"train-en.tsv is malformed \(line 1"):
        XtremeDataModule(str(root), "pawsx", ["en"], tokenizer=str(bert))
    (root / "pawsx" / "train-en.tsv").write_text("a cat\ta dog\n")  # XTREME's unlabelled format
    with pytest.raises(DatasetError, match=r"line 1 has no label \(XTREME's download script strips"):
        XtremeDataModule(str(root), "pawsx", ["en"], tokenizer=str(bert))


MULTIWORD = """# text = I don't know.
1\tI\tI\tPRON\t_\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\t_\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\t_\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\t_\t_\t0\troot\t_\t_
4.1\tknows\t_\tVERB\t_\t_\t_\t_\t4:conj\t_
5\t.\t.\tPUNCT\t_\t_\t4\tpunct\t_\t_

"""
SPACED = """# text = Hà Nội đẹp
1\tHà Nội\tHà Nội\tPROPN\t_\t_\t2\tnsubj\t_\t_
2\tđẹp\tđẹp\tADJ\t_\t_\t0\troot\t_\t_

"""


def test_udpos_from_conllu_as_xtreme_converts_it(tmp_path):
    """A multiword token keeps its surface form with its head sub-token's tag (here a tie at equal depth,
    broken by XTREME's POS precedence: AUX before PART); empty nodes, comments and treebanks without text
    are dropped; spaces inside a word are removed; every treebank of a language is pooled per split."""
    treebanks = write_tiny_ud_release(tmp_path / "releases", sentences=2)
    extra = treebanks / "UD_en-Extra"
    extra.mkdir()
    (extra / "en_extra-ud-test.conllu").write_text(MULTIWORD, encoding="utf-8")
    (treebanks / "UD_vi-Tiny" / "vi_tiny-ud-test.conllu").write_text(SPACED, encoding="utf-8")
    build(None, treebanks, tmp_path)
    sentences, tags = read_udpos(tmp_path / "xtreme/udpos/test-en.tsv")
    assert len(sentences) == 3  # 2 of en_tiny + 1 of en_extra (en_notext dropped from train)
    assert sentences[0] == ["I", "don't", "know", "."]  # en_extra sorts before en_tiny
    assert [UPOS[t] for t in tags[0]] == ["PRON", "AUX", "VERB", "PUNCT"]
    assert read_udpos(tmp_path / "xtreme/udpos/test-vi.tsv")[0] == [["HàNội", "đẹp"]]
    assert len(read_udpos(tmp_path / "xtreme/udpos/train-en.tsv")[0]) == 2


def test_prepare_script_prints_sizes_beside_table2(tmp_path, capsys):
    releases = tmp_path / "releases"
    pawsx, ud = write_tiny_pawsx_release(releases), write_tiny_ud_release(releases)
    assert prepare_xtreme.main(["--pawsx", str(pawsx), "--ud", str(ud), "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wrote 24 files" in out
    rows = {tuple(line.split()[:2]): line for line in out.splitlines()}
    assert rows[("PI", "de")].split()[2:] == ["8", "(49.4K)", "8", "(2.0K)", "8", "(2.0K)"]
    assert rows[("POS", "te")].split()[2:] == ["8", "(1.0K)", "8", "(0.1K)", "8", "(0.1K)"]
    assert prepare_xtreme.main(["--table2", "--data-dir", str(tmp_path)]) == 0
    assert rows[("PI", "en")] in capsys.readouterr().out.splitlines()


def test_pawsx_release_without_labels_is_refused(tmp_path):
    pawsx = write_tiny_pawsx_release(tmp_path, languages=("en",))
    (pawsx / "en" / "test_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\ta cat\ta dog\n")
    with pytest.raises(
        DatasetError, match=r"test_2k.tsv line 2 is not 'id<TAB>sentence1<TAB>sentence2<TAB>0\|1'"
    ):
        pawsx_splits(pawsx, "en")


def one_hot(tags: list[list[str]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, C, L] scores and [B, L] targets for sentences of ``tags`` placed after a [CLS] position."""
    scores = torch.zeros(len(tags), len(UPOS), length)
    targets = torch.full((len(tags), length), -100)
    for row, sentence in enumerate(tags):
        for position, tag in enumerate(sentence, start=1):
            scores[row, UPOS.index(tag), position] = 1.0
            targets[row, position] = UPOS.index(tag)
    return scores, targets


def test_pos_is_scored_with_seqevals_f1_as_xtreme():
    """seqeval reads POS tags as chunk labels: "NOUN NOUN" is one chunk, CCONJ and SCONJ share the type
    "CONJ". Chunks true {NOUN[0:2], VERB[2], CCONJ[0'], PUNCT[1']}, predicted {NOUN[0], VERB[1:3], SCONJ[0'],
    PUNCT[1']}: 2 of 4 match, F1 = 50% (token accuracy would be 80%)."""
    truth = [["NOUN", "NOUN", "VERB"], ["CCONJ", "PUNCT"]]
    guess = [["NOUN", "VERB", "VERB"], ["SCONJ", "PUNCT"]]
    metric = TokenClassificationTask(UPOS).make_metrics()
    for sentence_truth, sentence_guess in zip(truth, guess, strict=True):  # one sentence per batch
        scores, _ = one_hot([sentence_guess], 6)
        _, targets = one_hot([sentence_truth], 6)
        metric.update(scores, targets)
    assert float(metric.compute()["f1"]) == pytest.approx(50.0)
    assert f1_score(truth, guess) == pytest.approx(0.5)


def test_long_sentences_are_cut_into_pieces_that_fit(tmp_path):
    """max_length 4 leaves room for 2 sub-words ([CLS] and [SEP] take the rest); the tiny vocabulary maps each
    word to one, so a 4-word sentence becomes two pieces; a word with no sub-word becomes [UNK]."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(write_tiny_bert(tmp_path / "bert")))
    pieces, tags = fit_sentences([["cat", "dog", "runs", "\u200b"]], [[7, 7, 15, 12]], tokenizer, 4)
    assert pieces == [["cat", "dog"], ["runs", "[UNK]"]]
    assert tags == [[7, 7], [15, 12]]


def _xtreme_module(tmp_path, dataset, *overrides):
    import lightning as L

    from rw_mtl.build import build_datamodule, build_module

    config = compose_config(
        [
            *FAST_TRAINER,
            f"dataset={dataset}",
            *tiny_dataset_overrides(dataset, tmp_path / "data"),
            *overrides,
        ],
        output_dir=tmp_path / "run",
    )
    L.seed_everything(0)
    datamodule = build_datamodule(config)
    return build_module(config, datamodule.tasks, multi_input=True), datamodule


@pytest.mark.parametrize(
    ("dataset", "overrides"),
    [
        ("xtreme_pos", []),  # LibMTL's variant on the shared parameters: EW in epoch 0, then balancing
        ("xtreme_pos", ["weighting.grad.mode=last_layer", "weighting.grad.hparams.variant=original"]),
        ("xtreme_pi", ["weighting.grad.mode=last_layer", "weighting.grad.hparams.variant=original"]),
    ],
)
def test_gradnorm_weights_move_on_xtreme(tmp_path, dataset, overrides):
    """GradNorm is never EW in disguise: its weights leave (1, 1, 1, 1) on both problems — for tokens the last
    shared layer is the last Transformer layer's output Linear, not BERT's pooler that the heads never use."""
    import lightning as L

    module, datamodule = _xtreme_module(
        tmp_path, dataset, "weighting/loss=ew", "weighting/grad=gradnorm", *overrides
    )
    if "weighting.grad.mode=last_layer" in overrides:
        last = {id(p) for p in module.arch.last_shared_layer()}
        layer = module.arch.encoder.model.encoder.layer[-1].output.dense
        pooler = module.arch.encoder.model.pooler.dense
        expected = layer if dataset == "xtreme_pos" else pooler  # PAWS-X's z is the pooler's output
        assert last == {id(expected.weight), id(expected.bias)}
    trainer = L.Trainer(
        max_epochs=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    weights = module.grad_weighting.last_weights
    assert weights.sum().item() == pytest.approx(4.0)
    assert (weights - 1).abs().max() > 1e-4


def test_last_layer_without_gradient_fails_at_the_first_step(tmp_path, monkeypatch):
    """A last shared layer that no loss reaches (BERT's pooler under token outputs, were it not skipped)
    stops the run at its first step, naming the key to change."""
    from rw_mtl.nets.transformer import TransformerEncoder

    from .conftest import fit_one_step

    monkeypatch.setattr(TransformerEncoder, "unused_parameters", lambda self: [])
    module, datamodule = _xtreme_module(
        tmp_path, "xtreme_pos", "weighting/grad=gradnorm", "weighting.grad.mode=last_layer"
    )
    assert module.arch.last_shared_layer()[0] is module.arch.encoder.model.pooler.dense.weight
    with pytest.raises(ValueError, match=r"pooler.*receives no gradient.*weighting.grad.mode=param"):
        fit_one_step(module, datamodule)
