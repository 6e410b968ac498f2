"""Fine-tuning: the shared loop (loop.py), task heads (heads.py), the pieces built from options
(builders.py), what the classification scripts share (classification.py) and the task metrics (metrics.py,
pure numpy). Data reading and batching live in uer.data.finetune_data."""
