"""The training engine: models, losses, optimizers, schedulers, the loop and metrics (no Optuna)."""
