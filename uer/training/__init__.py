"""Training: the engine both loops share (device, AMP, DDP, optimiser and schedule, one step, reports), the
pre-training loop, optimisers, learning-rate schedules, checkpoints and exact resume. The fine-tuning loop is
uer/finetune/loop.py (on the same engine)."""
