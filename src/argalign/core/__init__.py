"""The base: what every other package may import, and which imports nothing above it.

Errors and the catalogue of codes, the defaults and a mode's user-change policy, the records
that cross modules (outcomes, violations, results, rejects, stage results), rows and their
texts, secrets scrubbed, files, the data folder and its lock, statistics, and where rows come
from (:mod:`argalign.core.sources`).
"""
