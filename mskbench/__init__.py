"""mskbench: benchmark harness for segmentation foundation models on MSK MRI."""

__version__ = "0.1.0"
