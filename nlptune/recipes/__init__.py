"""Recipes: pinned, self-contained runs (format, pins, annotation, running one)."""
