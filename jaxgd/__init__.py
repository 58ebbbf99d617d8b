"""jaxgd: a plain JAX loss function in, a fast and trustworthy minimisation out."""

__version__ = "0.1.0"
