#!/usr/bin/env python3
"""Convert Google's original TensorFlow BERT checkpoint to UER format (needs: pip install tensorflow-cpu).
The newer UER-py name of convert_bert_from_google_to_uer.py; same flags.

    python3 scripts/convert_bert_from_original_tf_to_uer.py --input_model_path models/chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --output_model_path models/google_zh_model.bin --type bert
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_google_to_uer()
