#!/usr/bin/env python3
"""Fine-tune span-extraction reading comprehension (CMRC 2018, SQuAD format): start and end scores per token.

``python3 run_cmrc.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("mrc")()
