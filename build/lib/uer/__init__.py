"""uer: pre-training and fine-tuning of text encoders, command-compatible with UER-py."""
__version__ = "0.3.0"
