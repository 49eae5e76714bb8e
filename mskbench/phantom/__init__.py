"""mskbench.phantom."""
