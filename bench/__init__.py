"""Benchmarks, run from the repository root; not installed.

``python3 -m bench`` runs the distribution suite, ``bash bench/run.sh`` the codec one.
"""
