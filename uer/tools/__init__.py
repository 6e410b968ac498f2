"""The tool scripts of UER-py's "Scripts" section (scripts/*.py are thin commands over these modules).

- :mod:`uer.tools.common`: options, errors, output checks and atomic writers every tool shares.
- :mod:`uer.tools.average`: average_model(s).py.      :mod:`uer.tools.check_model`: check_model.py.
- :mod:`uer.tools.cloze`: cloze_test.py.               :mod:`uer.tools.features`: extract_feature(s).py.
- :mod:`uer.tools.neighbours`: extract_embedding(s).py, topn_words_indep.py, topn_words_dep.py.
- :mod:`uer.tools.vocab_tools`: diff_vocab.py, dynamic_vocab_adapter.py.
- :mod:`uer.tools.build_vocab`: build_vocab.py.        :mod:`uer.tools.segment`: segment_corpus.py (jieba).
- :mod:`uer.tools.stacking`: run_lgb.py, run_lgb_cv_bayesopt.py (lightgbm, bayesian-optimization).
"""
