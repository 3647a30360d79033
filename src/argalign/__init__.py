"""argalign: re-align SFT conversations so that request and answer predict each other."""

import os

# LiteLLM (under DSPy) fetches a model cost map from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
