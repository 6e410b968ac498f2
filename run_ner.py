#!/usr/bin/env python3
"""Fine-tune a sequence labeller (named entity recognition), optionally with a CRF (--crf_target).

``python3 run_ner.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("ner")()
