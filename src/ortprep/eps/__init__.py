"""Execution-provider support rules (one module per EP) and ORT's partitioning algorithm."""
