"""The metric plugin API (pure Python: no Prefect, SQLAlchemy, pygit2 or Streamlit)."""
