"""mskbench.stats."""
