"""Strict, deterministic test environment (STYLE.md principle 15).

float64 is on so that reference comparisons are exact to 1e-10; float32
behaviour is tested with explicit float32 inputs. Rank promotion raises, so a
silent broadcast is a test failure.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
# Dtype promotion stays "standard": optax itself mixes Python floats with int32
# step counts (optax.tree.bias_correction), which "strict" rejects.
