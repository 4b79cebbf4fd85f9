"""The Streamlit dashboard: ``repometer dashboard`` serves ``main.py``."""
