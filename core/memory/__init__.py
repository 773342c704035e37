"""Explicit memories that editors keep outside the base model's weights.

`edit_memory`: SERAC's edit memory (Mitchell et al. 2022, §3), a stack of edit descriptors with their
scope-classifier key embeddings and the nearest-edit lookup. GRACE's codebook and WISE's side memory
belong here too (next).
"""
