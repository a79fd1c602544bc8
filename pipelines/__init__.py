"""mltrade: an Airflow-orchestrated ML trading pipeline.

Everything a task does lives in this package; ``dags/`` only schedules it. Nothing here imports
Airflow, and only :mod:`pipelines.models.registry` imports MLflow.
"""

__version__ = "0.1.0"
