"""Benchmarks of our backup and restore against the seeds' shell pipelines, as ratios.

``python -m benchmarks`` runs them all and writes ``benchmarks/RESULTS.md``; see ``__main__``.
"""
