"""Fine-tuning: the shared loop (loop.py), data and batching (data.py), task heads (heads.py), the pieces
built from options (builders.py), process launch (launch.py), and what the classification scripts share
(classification.py)."""
