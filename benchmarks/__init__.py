"""Speed benchmarks of evaluation and editing (run as `python -m benchmarks.run`; not installed with core)."""
