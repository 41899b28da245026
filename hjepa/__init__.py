"""hjepa: hierarchical JEPA world-model agents."""

__version__ = "0.1.0"
