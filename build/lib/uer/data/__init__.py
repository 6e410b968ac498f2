"""Data: everything between a text file and a batch of tensors.

Pre-training: ``preprocessing`` (corpus -> instances, worker processes) with the instance builders of
``pretrain_instances`` (one per dataset kind, registry ``str2instances``) and ``masking``, written in the
binary format of ``dataset``; ``pretrain_loader`` turns a dataset into batches (seekable, rank-aware,
dynamic masking). Fine-tuning: ``finetune_data`` reads TSV files by column name into flat ``Instances``
and collates them with dynamic padding.
"""
