"""autosynk: keeps Unikum in step with a municipality's student register and directory.

A plain package: it never imports Airflow. The DAGs in ``dags/`` and the ``autosynk``
command line call the same functions in :mod:`autosynk.pipeline`.
"""

__version__ = "0.1.0"
