"""Programs and what runs them on one example: compiled programs known by fingerprint, the gold
demonstrations, one example aligned and gated, the acceptance gate, a program evaluated on
examples, and the optimizers that compile programs.
"""
