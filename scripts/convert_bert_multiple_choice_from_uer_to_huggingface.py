#!/usr/bin/env python3
"""Convert a run_c3.py / run_chid.py model (output_layer_1 = pooler, output_layer_2) to HuggingFace's BertForMultipleChoice.

    python3 scripts/convert_bert_multiple_choice_from_uer_to_huggingface.py --input_model_path models/multiple_choice_model.bin \\
        --output_model_path hf_model/pytorch_model.bin --config_output_dir hf_model \\
        --config_path models/bert/base_config.json
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_uer_to_huggingface(kind="multiple_choice")
