"""The benchmark suite: every registered optimizer class on small real tasks, reproducibly.

``make bench-tasks`` (``python -m zij.bench``) runs it and writes one JSON file per task under
``benchmarks/results``; ``python -m zij.bench --help`` lists the options. The tasks
(:mod:`zij.bench.tasks`) need only torch, Python's own ``pydoc_data`` and, for the digits tasks,
scikit-learn's bundled dataset (``pip install 'zij[bench]'``); nothing is downloaded.

The protocol (:mod:`zij.bench.protocol`, :mod:`zij.bench.runner`): for each class and task, seed 0
runs a learning-rate grid of half-decade steps around the class's recipe (grown past an end where
the best rate lies there), then further seeds run at the best rate; every run has the task's step
budget, its batch order (drawn from the seed alone) and a linear warm-up with cosine decay. Each
run records train and validation loss curves, its best validation loss, the steps to the task's
target, the median step time, the peak optimizer-state bytes and the gradient evaluations per step.
"""

from .tasks import STARTS, TASKS, Task, rastrigin, rosenbrock

__all__ = ["STARTS", "TASKS", "Task", "rastrigin", "rosenbrock"]
