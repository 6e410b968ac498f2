#!/usr/bin/env python3
"""Convert HuggingFace's BertForMultipleChoice to a run_c3.py / run_chid.py model (output_layer_1 = pooler, output_layer_2).

    python3 scripts/convert_bert_multiple_choice_from_huggingface_to_uer.py --input_model_path hf_model/model.safetensors \\
        --output_model_path models/multiple_choice_model.bin
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_huggingface_to_uer(kind="multiple_choice")
