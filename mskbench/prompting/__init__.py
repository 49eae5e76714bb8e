"""mskbench.prompting."""
