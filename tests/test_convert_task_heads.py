"""HF BertForQuestionAnswering / BertForMultipleChoice / BertForTokenClassification <-> our run_cmrc.py,
run_c3.py and run_ner.py heads: logits equal to 1e-5, round trips exact, through the scripts."""
from __future__ import annotations

import pytest
import torch

from conftest import run_script
from test_convert_bert import HEADS, HIDDEN, hf_config, our_config, pair_batch, randomize
from uer.converters import bert, cli
from uer.converters.common import ConversionError
from uer.model_builder import build_model
from uer.model_loader import load_model_weights, load_state_dict as load_state_dict_file
from uer.model_saver import save_state_dict

transformers = pytest.importorskip("transformers")


def _base():
    base = build_model(our_config(), with_target=False).eval()
    return base.embedding, base.encoder


def test_extractive_qa_logits_equal_hf_and_round_trip(tmp_path):
    from uer.finetune.tasks.mrc import SpanExtractor

    torch.manual_seed(3)
    ids, token_types, attention = pair_batch()
    seg = (token_types + 1) * attention
    hf = randomize(transformers.BertForQuestionAnswering(hf_config()))
    save_state_dict(hf.state_dict(), tmp_path / "hf_qa.bin")
    run_script("scripts/convert_bert_extractive_qa_from_huggingface_to_uer.py", "--input_model_path",
               str(tmp_path / "hf_qa.bin"), "--output_model_path", str(tmp_path / "qa.bin"))
    head = SpanExtractor(*_base(), HIDDEN).eval()
    load_model_weights(head, tmp_path / "qa.bin", strict_prefixes=("",))
    with torch.no_grad():
        expected = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention)
        out = head({"src": ids, "seg": seg}).outputs
    real = attention.bool()
    torch.testing.assert_close(out["start_logits"][real], expected.start_logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["end_logits"][real], expected.end_logits[real], atol=1e-5, rtol=1e-5)
    # the other direction in-process (the same function the script calls; one subprocess per test is enough)
    cli.bert_uer_to_huggingface(["--input_model_path", str(tmp_path / "qa.bin"), "--output_model_path",
                                 str(tmp_path / "hf" / "pytorch_model.bin"), "--config_output_dir", str(tmp_path / "hf"),
                                 "--heads_num", str(HEADS)], kind="extractive_qa")
    reloaded = transformers.BertForQuestionAnswering.from_pretrained(tmp_path / "hf")
    for key, value in hf.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_multiple_choice_logits_equal_hf_and_round_trip(tmp_path):
    from uer.finetune.tasks.multiple_choice import MultipleChoice

    torch.manual_seed(4)
    ids, token_types, attention = pair_batch()  # 3 sequences: one question with 3 choices
    seg = (token_types + 1) * attention
    hf = randomize(transformers.BertForMultipleChoice(hf_config()))
    ours = bert.hf_to_uer(hf.state_dict(), "multiple_choice")
    save_state_dict(ours, tmp_path / "mc.bin")
    head = MultipleChoice(*_base(), HIDDEN, choices_num=3, pooler=True).eval()
    load_model_weights(head, tmp_path / "mc.bin", strict_prefixes=("",))
    with torch.no_grad():
        expected = hf(input_ids=ids[None], token_type_ids=token_types[None], attention_mask=attention[None]).logits
        out = head({"src": ids, "seg": seg, "choice_mask": torch.ones(3, dtype=torch.long)}).outputs["logits"]
    torch.testing.assert_close(out[None], expected, atol=1e-5, rtol=1e-5)
    cli.bert_uer_to_huggingface(["--input_model_path", str(tmp_path / "mc.bin"), "--output_model_path",
                                 str(tmp_path / "hf" / "pytorch_model.bin"), "--config_output_dir", str(tmp_path / "hf"),
                                 "--heads_num", str(HEADS)], kind="multiple_choice")
    reloaded = transformers.BertForMultipleChoice.from_pretrained(tmp_path / "hf")
    for key, value in hf.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    # UER-py's form (output_layer on the first position, no pooler) has no HF counterpart: refused
    uer_form = MultipleChoice(*_base(), HIDDEN, choices_num=3).state_dict()
    with pytest.raises(ConversionError, match="pooler"):
        bert.uer_to_hf(uer_form, "multiple_choice")


def test_token_classification_converters_keep_working_with_the_ner_model():
    from uer.finetune.tasks.ner import Tagger

    torch.manual_seed(5)
    ids, token_types, attention = pair_batch()
    seg = attention  # one segment
    tagger = Tagger(*_base(), HIDDEN, 5).eval()
    with torch.no_grad():
        for p in tagger.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    hf = transformers.BertForTokenClassification(hf_config(num_labels=5)).eval()
    hf.load_state_dict(bert.uer_to_hf(tagger.state_dict(), "token_classification"), strict=True)
    batch = {"src": ids, "seg": seg, "tag_mask": attention}
    with torch.no_grad():
        ours = tagger(batch).outputs["tag_logits"]
        expected = hf(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=attention).logits
    real = attention.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=1e-5, rtol=1e-5)
    back = bert.hf_to_uer(hf.state_dict(), "token_classification")
    for key, value in tagger.state_dict().items():
        if key != "embedding.seg.embedding.weight":  # row 0 (padding) is HF's type-0 row after the trip
            assert torch.equal(back[key], value), key
    with_crf = Tagger(*_base(), HIDDEN, 5, crf=True).state_dict()
    with pytest.raises(ConversionError, match="CRF"):
        bert.uer_to_hf(with_crf, "token_classification")


def test_encoder_without_heads_becomes_a_bare_hf_bert_model(tmp_path):
    """A UER file with no pre-training heads (here: a HF BertModel converted to ours) goes back as HF's BertModel:
    the same hidden states, and every encoder tensor exact."""
    torch.manual_seed(6)
    hf = randomize(transformers.BertModel(hf_config(), add_pooling_layer=False))
    ours = bert.hf_to_uer(hf.state_dict(), "mlm")  # no MLM head in a BertModel: the encoder only (warned)
    assert not any(key.startswith("target.") for key in ours)
    save_state_dict(ours, tmp_path / "encoder.bin")
    cli.bert_uer_to_huggingface(["--input_model_path", str(tmp_path / "encoder.bin"), "--output_model_path",
                                 str(tmp_path / "hf" / "pytorch_model.bin"), "--config_output_dir", str(tmp_path / "hf"),
                                 "--heads_num", str(HEADS)])
    written = load_state_dict_file(tmp_path / "hf" / "pytorch_model.bin", normalize=False)  # HF key names
    assert set(written) == set(hf.state_dict()) - {"embeddings.position_ids", "embeddings.token_type_ids"}
    reloaded = transformers.BertModel.from_pretrained(tmp_path / "hf", add_pooling_layer=False).eval()
    assert reloaded.config.architectures == ["BertModel"]
    ids, token_types, attention = pair_batch()
    with torch.no_grad():
        a = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention).last_hidden_state
        b = reloaded(input_ids=ids, token_type_ids=token_types, attention_mask=attention).last_hidden_state
    torch.testing.assert_close(a, b, atol=0, rtol=0)
