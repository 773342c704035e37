"""Reproduction of the knowedit paper: notebooks per artifact; logic lives in core."""
