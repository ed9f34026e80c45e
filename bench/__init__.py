"""Benchmarks: scripts that print their numbers (not timed tests). See each module's docstring."""
