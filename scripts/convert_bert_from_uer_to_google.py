#!/usr/bin/env python3
"""Convert a UER-format BERT file to Google's original TensorFlow checkpoint (needs: pip install tensorflow-cpu).

    python3 scripts/convert_bert_from_uer_to_google.py --input_model_path models/google_zh_model.bin \\
        --output_model_path tf_model/bert_model.ckpt --config_output_dir tf_model --type bert
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.bert_uer_to_google()
