#!/usr/bin/env python3
"""Predict labels with a model fine-tuned by run_classifier.py (UER-py's command line).

``python3 inference/run_classifier_infer.py --help``; the task is uer/finetune/tasks/classifier.py, the command
uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("classifier")()
