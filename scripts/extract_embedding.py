#!/usr/bin/env python3
"""The word embedding matrix of a model with its vocabulary, in word2vec text format.

The code and the full usage are in uer/tools/neighbours.py (``python3 scripts/extract_embedding.py --help``).
"""
from uer.tools.neighbours import extract_embedding_main

if __name__ == "__main__":
    extract_embedding_main(prog="extract_embedding.py")
