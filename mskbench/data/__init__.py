"""mskbench.data."""
