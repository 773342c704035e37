"""Reproduction of the instructedit paper: notebooks per artifact; logic lives in core."""
