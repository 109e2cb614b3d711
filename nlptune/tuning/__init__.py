"""Hyperparameter sweeps with Optuna (>= 4): search spaces over any config key, seeded samplers, pruners
fed from the training loop's evaluation hook (in training samples), journal or RDB storage, local
workers, cross-validation, seed confirmation and the sweep's reports.

Optuna is imported here and nowhere else in nlptune. Entry point: `run_sweep(overrides)`.
"""
from nlptune.tuning.sweep import SweepOutcome, run_sweep

__all__ = ["SweepOutcome", "run_sweep"]
