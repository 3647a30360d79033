"""Test fixtures and benchmark drivers; not part of the product path."""
