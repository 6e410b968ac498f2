#!/usr/bin/env python3
"""Fine-tune a Sentence-BERT pair classifier (two towers, [u; v; |u-v|; u*v]).

``python3 run_classifier_siamese.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("siamese")()
