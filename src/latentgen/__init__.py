"""latentgen: latent generalization during memorization, as a reproducible pipeline."""

__version__ = "0.1.0"
