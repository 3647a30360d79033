"""argalign: re-align SFT conversations so that request and answer predict each other."""

import os

# LiteLLM (under DSPy) fetches a model cost map from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# MLflow and Hugging Face report usage to their vendors unless told not to; argalign is
# offline-first and sends nothing anywhere it was not asked to.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
