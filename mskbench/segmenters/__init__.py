"""mskbench.segmenters."""
