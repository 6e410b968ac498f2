#!/usr/bin/env python3
"""Convert a UER-format BERT file to HuggingFace's BertForPreTraining (--type bert) or BertForMaskedLM (--type mlm).

    python3 scripts/convert_bert_from_uer_to_huggingface.py --input_model_path models/book_review_model.bin \\
        --output_model_path hf_model/pytorch_model.bin --config_output_dir hf_model --config_path models/bert/base_config.json --type bert

    then: transformers.BertForPreTraining.from_pretrained("hf_model")
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_uer_to_huggingface()
