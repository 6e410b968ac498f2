#!/usr/bin/env python3
"""Convert HuggingFace's BertForQuestionAnswering to a run_cmrc.py model (output_layer).

    python3 scripts/convert_bert_extractive_qa_from_huggingface_to_uer.py --input_model_path hf_model/model.safetensors \\
        --output_model_path models/extractive_qa_model.bin
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_huggingface_to_uer(kind="extractive_qa")
