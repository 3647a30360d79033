"""Models: the settings YAML, the bundled GGUF models, the local servers argalign starts, and
the DSPy LMs built from them.
"""
