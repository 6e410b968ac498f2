#!/usr/bin/env python3
"""Fine-tune idiom cloze (ChID): choose the idiom that fills each #idiomNNNNNN# blank from its candidates.

``python3 run_chid.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("chid")()
