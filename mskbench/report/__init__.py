"""mskbench.report."""
