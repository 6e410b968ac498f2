#!/usr/bin/env python3
"""Convert HuggingFace's BertForTokenClassification to a run_ner.py model (output_layer).

    python3 scripts/convert_bert_token_classification_from_huggingface_to_uer.py --input_model_path hf_ner/model.safetensors \\
        --output_model_path models/ner_model.bin
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_huggingface_to_uer(kind="token_classification")
