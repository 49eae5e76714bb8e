"""Built-in biomarkers plugins."""
