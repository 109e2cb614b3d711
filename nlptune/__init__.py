"""nlptune: config-driven, fast, reproducible fine-tuning of language-understanding models."""
__version__ = "0.1.0"
