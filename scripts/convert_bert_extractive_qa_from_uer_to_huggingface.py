#!/usr/bin/env python3
"""Convert a run_cmrc.py model (output_layer) to HuggingFace's BertForQuestionAnswering.

    python3 scripts/convert_bert_extractive_qa_from_uer_to_huggingface.py --input_model_path models/extractive_qa_model.bin \\
        --output_model_path hf_model/pytorch_model.bin --config_output_dir hf_model \\
        --config_path models/bert/base_config.json
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_uer_to_huggingface(kind="extractive_qa")
