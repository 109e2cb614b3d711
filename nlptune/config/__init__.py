"""Configuration: composition of conf/, typed run config, validation and the component registry.

Never imports torch; Hydra is used here and nowhere else.
"""
from nlptune.config.errors import ConfigError, ConfigIssue, NlptuneError
from nlptune.config.schema import (ModelConfig, OptimizerConfig, RunConfig, SchedulerConfig, TaskConfig,
                                   TokenizerConfig, TrainerConfig, build_run_config)

__all__ = ["ConfigError", "ConfigIssue", "NlptuneError", "ModelConfig", "OptimizerConfig", "RunConfig",
           "SchedulerConfig", "TaskConfig", "TokenizerConfig", "TrainerConfig", "build_run_config"]
