"""Training: the Accelerate loop, optimizers and schedules, evaluation, run directories, prediction.

Accelerate is imported here and nowhere else in nlptune.
"""
