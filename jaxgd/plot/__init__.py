"""Plots of jaxgd runs (needs matplotlib: ``pip install jaxgd[plot]``).

- :func:`loss_curve`: one run's loss against steps or epochs;
- :func:`compare`: several runs on one axes (log-scale loss);
- :func:`schedule`: a step-size schedule's learning rate over steps;
- :func:`subplots`: a new figure on the non-interactive Agg canvas;
- :func:`save`: write a figure, creating its folder.

Example:
  >>> import jaxgd, jaxgd.plot
  >>> ax = jaxgd.plot.schedule(jaxgd.schedules.step_decay(0.1, 10, 0.5), steps=40)
  >>> path = jaxgd.plot.save(ax, "out/schedule.png")  # doctest: +SKIP
"""

from .curves import MISSING as MISSING
from .curves import compare as compare
from .curves import loss_curve as loss_curve
from .curves import save as save
from .curves import schedule as schedule
from .curves import subplots as subplots

__all__ = ["compare", "loss_curve", "save", "schedule", "subplots"]
