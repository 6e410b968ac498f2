"""Instance builders: from tokenized documents to fixed-width training instances, one class per target.

UER-py semantics (its docs are the contract; this is our own code):

* ``bert`` (corpus: one sentence per line, a blank line between documents). Google BERT's recipe: per
  document, a target length of ``seq_length - 3`` tokens, or with probability ``short_seq_prob`` a random
  one in [2, seq_length - 3]; sentences are gathered into a chunk until it reaches the target; A = the
  chunk's first 1..k-1 sentences; B = the rest (label 0), or with probability 1/2 (always when the chunk
  has one sentence) sentences from a random *other* document of the buffer (label 1, "random next"; the
  chunk's unused sentences are put back). The longer segment is truncated one token at a time from a
  random end until ``[CLS] A [SEP] B [SEP]`` fits. A buffer holding a single document draws B from it.
* ``albert``: same corpus and chunking; B is always the continuation of A, and with probability 1/2 the
  two are swapped (label 1 = swapped). A one-sentence chunk is split inside the sentence so that both
  segments are real text (Google's ALBERT falls back to a random document there; SOP never does here).
* ``mlm`` (corpus: one document per line, RoBERTa format): ``[CLS] tokens [SEP]`` with at most
  ``seq_length - 2`` tokens per instance. Without ``--full_sentences`` each document gives its own
  instances (the last one shorter). With it, documents are packed into one stream separated by [SEP]
  (a separator that would open an instance is dropped) so every instance is full; the tail of a buffer
  carries over to the next one and only a worker's very last instance can be short.
* ``lm`` and ``bilm`` (one document per line, GPT/ELMo): each document becomes the stream
  ``[CLS] tokens [SEP]``, cut into windows of ``seq_length + 1`` tokens that start every ``seq_length``
  tokens (consecutive windows share one token), so the loader's inputs ``window[:-1]`` are at most
  ``seq_length`` wide and every token after [CLS] is a next-token label exactly once. A window needs two
  tokens. No masks and one copy (``--dup_factor`` does not apply); the two targets store the same arrays.
* ``cls`` (``label<TAB>text`` per line, the label an integer 0..n-1; a header line whose first field is
  ``label`` is skipped): ``[CLS] tokens [SEP]`` truncated to ``seq_length``, plus the label (int32). No masks.
* ``dup_factor``: static masking writes each buffer ``dup_factor`` times; bert/albert rebuild the
  instances each time (new A/B splits, random documents and masks), mlm repeats the same chunks with new
  masks. With dynamic masking the masks are drawn in the loader, so one copy is stored (as UER-py does:
  preprocess.py logs that --dup_factor is ignored).

Memory: a buffer stores its tokens in one flat int32 array (4 bytes per token, not a Python list of
ints) and instances are described by token ranges into it, then gathered into arrays in blocks of at
most ``PACK_BLOCK`` instances; peak memory is set by ``--docs_buffer_size``, not by the corpus size.
"""
from __future__ import annotations

# The registry, then every builder family registers its kinds (import order = registration order, which
# uer.config.normalize_target reads: the first kind declaring a list of objectives trains on it).
from uer.data.instances_base import _check_kinds, str2instances  # noqa: F401 - str2instances is this module's API
import uer.data.instances_pairs  # noqa: E402,F401  bert, albert, sd, sr
import uer.data.instances_mlm  # noqa: E402,F401  mlm
import uer.data.instances_lm  # noqa: E402,F401  lm, bilm, cls
import uer.data.instances_ernie  # noqa: E402,F401  ERNIE 2.0's kinds: cap, tdr, dr, ir, dlm

_check_kinds()  # every declared link names known objectives and kinds: a typo fails at import, not mid-run
