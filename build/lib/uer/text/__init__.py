"""Text: the vocabulary (``vocab``) and the tokenizers (``tokenizers``, registry ``str2tokenizer``)."""
from uer.text.tokenizers import Tokenizer, build_tokenizer, str2tokenizer
from uer.text.vocab import Vocab, VocabError

__all__ = ["Tokenizer", "Vocab", "VocabError", "build_tokenizer", "str2tokenizer"]
