#!/usr/bin/env python3
"""Convert a run_classifier.py model (pooling first) to HuggingFace's BertForSequenceClassification.

    python3 scripts/convert_bert_text_classification_from_uer_to_huggingface.py --input_model_path models/finetuned_model.bin \\
        --output_model_path hf_classifier/pytorch_model.bin --config_output_dir hf_classifier --config_path models/bert/base_config.json
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_uer_to_huggingface(kind="text_classification")
