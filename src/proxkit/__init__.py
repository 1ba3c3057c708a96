"""proxkit: refine pre-training data by programming every example (ProX, arXiv 2409.17115)."""

__version__ = "0.1.0"
