"""Reproduction of the wise paper: notebooks per artifact; logic lives in core."""
