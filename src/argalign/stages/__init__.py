"""The pipeline's stages, each reading and writing the data folder: ``prepare``, ``run``
(:mod:`argalign.stages.run`), ``merge``, ``clean``, ``report``, ``export``, ``publish``,
``validate`` and ``optimize``; :mod:`argalign.stages.pipeline` runs them in order.
"""
