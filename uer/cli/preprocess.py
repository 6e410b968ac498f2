r"""Build a pre-training dataset from a corpus (UER-py's preprocess.py command line).

    python3 preprocess.py --corpus_path corpora/book_review_bert.txt --vocab_path models/google_zh_vocab.txt \
                          --dataset_path dataset.pt --processes_num 8 --target bert

The work happens in uer.data.preprocessing; the output format is documented in uer.data.dataset.
"""
from __future__ import annotations

import argparse

from uer.errors import entry_point

# Worker processes are spawned: they re-import this file as __mp_main__, so heavy imports stay inside main().


@entry_point("preprocess.py")
def main(argv: list[str] | None = None) -> int:
    import logging

    from uer.opts import HelpFormatter, add_logging_options, add_preprocess_options
    from uer.utils.logging import setup_logging_from_args
    from uer.data.preprocessing import build_dataset, options_from_args
    from uer.utils.io import check_outputs
    from uer.utils.cleanup import install_signal_handlers

    install_signal_handlers()  # SIGTERM: stop the workers, remove the shards and temp files

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_preprocess_options(parser)
    parser.add_argument("--replace_invalid_utf8", action="store_true",
                        help="Read lines with bytes that are not UTF-8 with U+FFFD and report how many, instead of "
                             "stopping at the first one with its line and byte offset.")
    add_logging_options(parser)
    args = parser.parse_args(argv)
    setup_logging_from_args(args)
    if not args.vocab_path and not args.spm_model_path:
        parser.error("a vocabulary is required: --vocab_path or --spm_model_path")
    try:
        options = options_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    # Before the work: an existing folder or the corpus itself as --dataset_path was found only at the end.
    check_outputs(args, outputs=("dataset_path",), inputs=("corpus_path", "vocab_path", "spm_model_path"))
    build_dataset(options, log=logging.getLogger("preprocess").info)
    return 0
