#!/usr/bin/env python3
"""Continue texts with a model pre-trained with the lm target (UER-py's text generator).

    python3 scripts/generate.py --load_model_path models/gpt_model.bin --vocab_path models/google_zh_vocab.txt \\
        --input_path story_beginning.txt --output_path story_full.txt --config_path models/bert_base_config.json \\
        --encoder gpt --target lm --seq_length 128

Both UER-py spellings work: --pretrained_model_path/--input_path/--output_path (generate.py) and
--load_model_path/--test_path/--prediction_path (generate_lm.py). Greedy decoding: --top_k 1; sampling:
--top_k, --top_p, --temperature, --seed. The code is in uer/generation.py.
"""


from uer.generation import main

if __name__ == "__main__":
    main(prog="generate.py")
