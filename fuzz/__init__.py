"""Coverage-guided fuzzing of every decoder that reads a peer's bytes.

``fuzz.targets`` holds the targets as plain functions of one ``bytes`` input,
so the regression tests replay them without atheris; ``python -m fuzz`` runs
them under atheris (the ``fuzz`` extra). See ``python -m fuzz --help``.
"""
