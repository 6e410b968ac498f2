#!/usr/bin/env python3
"""Predict pair labels with a model fine-tuned by run_classifier_siamese.py.

``python3 inference/run_classifier_siamese_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("siamese")()
