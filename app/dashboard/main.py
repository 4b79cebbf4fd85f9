"""The dashboard's entry point: ``streamlit run app/dashboard/main.py`` (or ``repometer dashboard``)."""

import streamlit as st

st.set_page_config(page_title="repometer", page_icon=":material/monitoring:", layout="wide")

pages = [
    st.Page(
        "views/repositories.py",
        title="Repositories",
        icon=":material/list:",
        url_path="repositories",
        default=True,
    ),
    st.Page(
        "views/repository.py",
        title="Repository",
        icon=":material/monitoring:",
        url_path="repository",
    ),
    st.Page(
        "views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"
    ),
    st.Page("views/metrics.py", title="Metrics", icon=":material/functions:", url_path="metrics"),
]
st.navigation(pages).run()
