"""Palimpsest core: the synthetic world, models, editors, metrics and evaluation protocols.

Organised by concept: `world` (the seeded fictional world and its dataset emitters), `models`
(loading, architecture adapters, world LMs), `data` (readers of the real file layouts),
`metrics` (pure metric functions), `eval` (edit-and-evaluate protocols), `editors` (one module
per method plus the registry), `stats`, `hypernet`, `memory` (shared building blocks).
"""
