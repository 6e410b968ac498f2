#!/usr/bin/env python3
"""Predict labels with a prompt model (run_classifier_prompt.py, or a pre-trained model zero-shot).

``python3 inference/run_classifier_prompt_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("prompt")()
