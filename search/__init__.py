"""The hyperparameter search: search space, objective, storages and the command-line tools."""
