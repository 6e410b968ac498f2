#!/usr/bin/env python3
"""Convert a HuggingFace BERT file (BertModel, BertForPreTraining, BertForMaskedLM; .bin or .safetensors) to UER format.

    python3 scripts/convert_bert_from_huggingface_to_uer.py --input_model_path models/chinese_roberta_wwm_large_ext_pytorch/pytorch_model.bin \\
        --output_model_path models/chinese_roberta_wwm_large_ext_pytorch/pytorch_model_uer.bin --layers_num 24 --type bert
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_huggingface_to_uer()
