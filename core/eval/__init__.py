"""Evaluation: batched model scoring (`scoring`) and edit-and-evaluate protocols."""
