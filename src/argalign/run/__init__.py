"""Batch alignment: run many examples, resume after a kill, merge and clean the results.

On disk, under one data directory (``--data``, default ``data``)::

    raw/<config>/<split>.jsonl                               argalign prepare
    runs/<run>/manifest.json                                 the run's parameter fingerprint
    runs/<run>/results/<config>/<split>/<mode>-<model>.jsonl one result record per line
    runs/<run>/summary.json, failures.jsonl                  written at the end of a batch
    merged/<config>/<split>.jsonl                            argalign merge (raw order)
    cleaned/<config>/<split>.jsonl, <split>.rejects.jsonl    argalign clean
    cleaned/summary.json

Modules: ``assign`` (examples to groups), ``store`` (files, manifest, what is done), ``plan``
(options, fingerprint, work left), ``throttle`` (per-model limits), ``runner`` (the batch),
``report`` (summary, failures, MLflow metrics), ``merge``, ``clean``, ``pipeline`` and
``commands`` (the CLI).
"""
