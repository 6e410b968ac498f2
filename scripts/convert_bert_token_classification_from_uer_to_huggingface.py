#!/usr/bin/env python3
"""Convert a run_ner.py model (without CRF) to HuggingFace's BertForTokenClassification.

    python3 scripts/convert_bert_token_classification_from_uer_to_huggingface.py --input_model_path models/finetuned_model.bin \\
        --output_model_path hf_ner/pytorch_model.bin --config_output_dir hf_ner --config_path models/bert/base_config.json
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_uer_to_huggingface(kind="token_classification")
