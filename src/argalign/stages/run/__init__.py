"""Batch alignment: run many examples, resume after a kill, merge and clean the results.

The data directory's layout is in :mod:`argalign.core.datadir`.

Modules: ``assign`` (examples to groups), ``store`` (files, manifest, what is done), ``plan``
(options, fingerprint, work left), ``throttle`` (per-model limits), ``runner`` (the batch),
``report`` (summary, failures, MLflow metrics), ``merge`` and ``clean``. The stages in one
call are :mod:`argalign.stages.pipeline`; their CLI is :mod:`argalign.cli.run`.
"""
