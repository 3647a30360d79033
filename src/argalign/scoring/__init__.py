"""Everything that judges a rewrite: the hard invariants, the quality checks and the one gate
over both (pure, no DSPy), then the judge's readings and the metric with its comparisons, and
the tables, plots and calibration of scores.
"""
