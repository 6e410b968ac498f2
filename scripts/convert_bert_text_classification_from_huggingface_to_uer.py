#!/usr/bin/env python3
"""Convert HuggingFace's BertForSequenceClassification to a run_classifier.py model (output_layer_1/2).

    python3 scripts/convert_bert_text_classification_from_huggingface_to_uer.py --input_model_path hf_classifier/model.safetensors \\
        --output_model_path models/classifier_model.bin
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_huggingface_to_uer(kind="text_classification")
