"""Repositories: every registered repository with its state, and a form to add one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.dashboard import data, widgets


def _status(record, summary, run) -> str:
    if run is not None:
        doing = "ingesting" if record.status in ("new", "ingesting") else "computing"
        return doing if run.status == "running" else f"{doing} (scheduled)"
    if record.status == "ingesting":  # by another front-end or the command line
        return "ingesting"
    if record.status == "failed":
        return "failed"
    if not data.is_ingested(record):
        return "not ingested"
    if summary["fresh"] < summary["metrics"]:
        return f"{summary['metrics'] - summary['fresh']} results stale"
    return "up to date"


_COLORS = {"up to date": "#1a7f37", "failed": "#cf222e", "not ingested": "#6e7781"}


def _color(status: str) -> str:
    color = _COLORS.get(status, "#9a6700")
    return f"color: {color}; font-weight: 600"


st.title("Repositories")
records = data.repositories()
active = {}
if not records:
    st.info("No repository is registered yet: add one below.")
else:
    rows = []
    for record in records:
        summary = data.overview(record)
        run = data.active_run(record)
        if run is not None:
            active[record.id] = (record, run)
        rows.append({
            "repository": record.name,
            "status": _status(record, summary, run),
            "head": (record.head or "")[:10],
            "commits": summary["commits"],
            "authors": summary["authors"],
            "lines +/-": f"+{summary['lines_added']:,} / -{summary['lines_deleted']:,}",
            "last ingest": widgets.ago(summary["last_ingested"]),
            "fresh results": summary["fresh"] / summary["metrics"] if summary["metrics"] else 0.0,
            "url": record.url,
            "problem": record.error or (
                f"metrics failed: {', '.join(summary['failed_metrics'])}" if summary["failed_metrics"] else ""
            ),
        })  # fmt: skip
    st.dataframe(
        pd.DataFrame(rows).style.map(_color, subset=["status"]), hide_index=True, width="stretch",
        column_config={
            "commits": st.column_config.NumberColumn(format="localized"),
            "authors": st.column_config.NumberColumn(format="localized"),
            "fresh results": st.column_config.ProgressColumn(
                help="share of the metric catalogue (default parameters) up to date with the "
                "ingested history", format="percent", min_value=0.0, max_value=1.0),
        },
    )  # fmt: skip
    for record in records:
        if record.status == "failed":
            st.error(f"**{widgets.md(record.name)}** failed: {widgets.md(record.error)}")
    for record, run in active.values():
        widgets.show_run(run, title=f"{widgets.md(record.name)}: ")
    cols = st.columns(min(4, len(records)))
    for i, record in enumerate(records):
        with cols[i % len(cols)]:
            st.page_link("views/repository.py", label=f"Open {widgets.md(record.name)}",
                         icon=":material/monitoring:", query_params={"repo": record.name})  # fmt: skip

st.subheader("Add a repository")
allow_local = data.settings().allow_local_paths
schemes = ", ".join(f"{scheme}://" for scheme in data.settings().url_schemes)
with st.form("add_repository"):
    target = st.text_input(
        "Repository URL or local path" if allow_local else "Repository URL",
        key="add_target",
        placeholder="https://github.com/owner/name",
        help=f"Accepted here: {schemes} (REPOMETER_URL_SCHEMES)"
        + ("; or a path on this machine" if allow_local else
           "; local paths are disabled (REPOMETER_ALLOW_LOCAL_PATHS)"),
    )  # fmt: skip
    ref = st.text_input("Ref", value="HEAD", key="add_ref", help="branch, tag or HEAD")
    submitted = st.form_submit_button("Add and analyse", type="primary")
if submitted:
    try:
        record, new, run = data.register(target, ref)
    except data.RefusedError as exc:
        st.error(str(exc), icon=":material/block:")
    else:
        verb = "Added" if new else "Already registered:"
        st.session_state["followed_run"] = (
            widgets.md(record.name),
            run.id,
            f"{verb} {widgets.md(record.name)}; analysing it (run {run.id[:8]}).",
        )
        st.rerun()  # the table above shows it now
followed = st.session_state.get("followed_run")
if followed is not None:
    name, run_id, message = followed
    st.success(message)
    run = data.follow(run_id)
    if run is not None and all(run_id != active_run.id for _, active_run in active.values()):
        widgets.show_run(run, title=f"{name}: ")
