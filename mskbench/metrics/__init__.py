"""mskbench.metrics."""
