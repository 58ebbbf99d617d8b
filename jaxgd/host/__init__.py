"""The host tier: a one-off solve run from Python over NumPy, with one jitted ``value_and_grad``.

A new problem's first :func:`jaxgd.minimize` call would otherwise wait for XLA
to compile the whole fused loop (about a second on a CPU), where scipy's
solvers, driving a jitted ``value_and_grad`` from Python, answer in a tenth of
that. For the methods this tier knows (``lbfgs``, ``bfgs`` with a Moré-Thuente
search, no proximal term), the first call runs the same iterations here
(:mod:`jaxgd.host.loop`) while the fused loop compiles in a background thread
for the calls that follow (:mod:`jaxgd.host.tier`). See docs/architecture.md.
"""
