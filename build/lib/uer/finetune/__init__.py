"""Fine-tuning: the shared loop (loop.py), task heads (heads.py), the pieces built from options
(builders.py) and what the classification scripts share (classification.py). Data reading and batching
live in uer.data.finetune_data."""
