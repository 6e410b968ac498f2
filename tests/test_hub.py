"""hubconf.py through torch.hub.load(..., source="local"): our tokenizer and models from an HF folder give
transformers' ids, hidden states, MLM / classification / question-answering logits for the same weights."""
from __future__ import annotations

import pytest
import torch

from conftest import ROOT
from test_convert_bert import randomize
from test_hf_folder import POSITIONS, SIZES, wordpiece_vocab
from uer.hub import HubEncoder, HubMaskedLM

transformers = pytest.importorskip("transformers")
TEXTS = ["w1 w2 W3 w4", "w7 w8"]


def hub(entry: str, *args, **kwargs):
    return torch.hub.load(str(ROOT), entry, *args, source="local", **kwargs)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    config = transformers.BertConfig(vocab_size=60, max_position_embeddings=POSITIONS, num_labels=3, **SIZES)
    torch.manual_seed(9)
    out = {}
    for name, cls in (("mlm", transformers.BertForMaskedLM), ("cls", transformers.BertForSequenceClassification),
                      ("qa", transformers.BertForQuestionAnswering)):
        config.num_labels = 2 if name == "qa" else 3  # qa_outputs: start and end
        model = randomize(cls(config))
        model.save_pretrained(root / name)
        wordpiece_vocab(root / name)
        out[name] = (root / name, model)
    return out


def hf_batch(folder):
    return transformers.AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt")


def test_hub_tokenizer_and_models_equal_transformers(folders):
    folder, hf_mlm = folders["mlm"]
    tokenizer = hub("tokenizer", folder)
    batch = hf_batch(folder)
    ours_ids = [[tokenizer.vocab.cls_id] + tokenizer.encode(text) + [tokenizer.vocab.sep_id] for text in TEXTS]
    assert ours_ids == [row[row != 0].tolist() for row in batch["input_ids"]]
    real = batch["attention_mask"].bool()
    encoder, mlm = hub("model", folder), hub("modelForMaskedLM", folder)
    assert isinstance(encoder, HubEncoder) and isinstance(mlm, HubMaskedLM)
    with torch.no_grad():
        expected = hf_mlm(**batch, output_hidden_states=True)
        torch.testing.assert_close(encoder(**batch)[real], expected.hidden_states[-1][real], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mlm(**batch)[real], expected.logits[real], atol=1e-5, rtol=1e-5)
    folder, hf_cls = folders["cls"]
    with torch.no_grad():
        torch.testing.assert_close(hub("modelForSequenceClassification", folder)(**batch), hf_cls(**batch).logits,
                                   atol=1e-5, rtol=1e-5)
    folder, hf_qa = folders["qa"]
    with torch.no_grad():
        start, end = hub("modelForQuestionAnswering", folder)(**batch)
        expected = hf_qa(**batch)
    torch.testing.assert_close(start[real], expected.start_logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(end[real], expected.end_logits[real], atol=1e-5, rtol=1e-5)
