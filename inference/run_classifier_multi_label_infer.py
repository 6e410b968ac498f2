#!/usr/bin/env python3
"""Predict label sets with a model fine-tuned by run_classifier_multi_label.py.

``python3 inference/run_classifier_multi_label_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("multi_label")()
