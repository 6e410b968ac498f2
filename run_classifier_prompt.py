#!/usr/bin/env python3
"""Classify through the MLM head with a cloze template and answer words (few-shot, or zero-shot with --epochs_num 0).

``python3 run_classifier_prompt.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("prompt")()
