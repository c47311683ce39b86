"""Design-space exploration: a grid of engines evaluated for resources, power, accuracy,
cycles and writes, cached task by task, on a local process pool or a Dask cluster.

``zohw explore`` (:mod:`zohw.commands.explore`) is the command; ``python -m zohw.explore
--default`` runs the default study (``make explore``). Modules: :mod:`.grid` (axes, parsing,
expansion), :mod:`.tasks` (the cacheable tasks and their functions), :mod:`.executors` (serial,
process pool, Dask), :mod:`.runner` (cache look-up, execution, rows), :mod:`.report` (Pareto
fronts, JSON/CSV/Markdown, plots, README block). See ``docs/explore.md``.
"""

from .grid import AXES, Grid, expand
from .runner import default_cache_dir, explore

__all__ = ["AXES", "Grid", "expand", "explore", "default_cache_dir"]
