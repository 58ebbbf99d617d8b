"""The host tier: a one-off solve run from Python over NumPy, with one jitted ``value_and_grad``.

A new problem's first :func:`jaxgd.minimize` call would otherwise wait for XLA
to compile the whole fused loop (about a second on a CPU), where scipy's
solvers, driving a jitted ``value_and_grad`` from Python, answer in a tenth of
that. For the methods this tier knows (``lbfgs``, ``bfgs``, ``cg`` with a
Moré-Thuente search, no proximal term; ``lbfgs`` with ``bounds``, L-BFGS-B,
:mod:`jaxgd.host.lbfgsb`), a problem's calls run the same
iterations here (:mod:`jaxgd.host.loop`) until its fused loop, queued at the
second call, has compiled in a background thread (:mod:`jaxgd.host.tier`).
See docs/architecture.md.
"""
