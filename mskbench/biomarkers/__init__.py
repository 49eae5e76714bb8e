"""mskbench.biomarkers."""
