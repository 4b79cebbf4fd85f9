"""repometer core: settings, the git adapter, ingestion and storage.

Front-ends live in ``app/``, Prefect orchestration in ``tasks/`` and ``flows/``, and the
metric plugin API in ``metrics/``.
"""

__version__ = "0.1.0"
