"""Apache Airflow provider that stops remote jobs and waits until they are stopped.

Nothing heavy is imported here: DAG files import operator modules, which must stay cheap.
"""

__version__ = "0.1.0"
