"""Compare: one metric for several repositories on one chart."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.dashboard import charts, data, widgets
from metrics.api import Shape

st.title("Compare repositories")
records = data.repositories()
if not records:
    st.info("No repository is registered yet: add some on the Repositories page.")
    st.stop()

catalogue = {m.name: m for m in data.registry()}
names = [r.name for r in records]
left, right = st.columns([2, 1])
ingested = [r.name for r in records if data.is_ingested(r)] or names
chosen = left.multiselect("Repositories", names, default=ingested[:5], key="compare_repos")
metric_name = right.selectbox(
    "Metric", list(catalogue), index=list(catalogue).index("commits") if "commits" in catalogue else 0,
    key="compare_metric", format_func=lambda n: f"{n} ({catalogue[n].unit})",
)  # fmt: skip
m = catalogue[metric_name]
st.caption(f"{m.description} · unit: {m.unit} · shape: {m.shape}")
wanted = widgets.history_filters(None, period=m.shape == Shape.SERIES)
selected = [r for r in records if r.name in chosen]
if not selected:
    st.info("Choose at least one repository.")
    st.stop()

results = {r.name: data.load(r, m.name, data.applicable(m, wanted)) for r in selected}
for record in selected:
    entry = results[record.name]
    if entry.needs_run or not data.is_ingested(record):
        with st.expander(f"{widgets.md(record.name)}: results missing or stale", expanded=True):
            widgets.stale_notice(record, [entry], auto=False)
    elif entry.error:
        st.error(f"{widgets.md(record.name)}: {widgets.md(entry.error)}")

frames = []
for name, entry in results.items():
    if entry.rows and not entry.error:
        df = charts.frame(entry.rows)
        df["repository"] = name + ("" if entry.fresh else " (stale)")
        frames.append(df)
if not frames:
    st.info("Nothing to draw yet.")
    st.stop()
df = pd.concat(frames, ignore_index=True)

if m.shape == Shape.SERIES:
    series = charts.period_frame(df.to_dict(orient="records"))
    series = series.dropna(subset=["value"])
    st.altair_chart(charts.compare_series(m, series, wanted.get("period", "")), width="stretch")
else:
    value = charts.numeric_column(df)
    if value is None:
        st.info(f"{m.name} has no numeric column to compare.")
    elif m.shape == Shape.SCALAR:
        st.altair_chart(charts.compare_bars(m, df, None, value), width="stretch")
    else:
        label = charts.label_column(m, df.drop(columns=["repository"]))
        shared = set()
        if label is not None:
            per_repo = [set(g[label].dropna()) for _, g in df.groupby("repository")]
            shared = set.intersection(*per_repo) if len(per_repo) > 1 else per_repo[0]
        if label is not None and shared:
            # the entities the repositories share (languages, domains, ...), largest first
            totals = df[df[label].isin(shared)].groupby(label)[value].sum()
            keep = totals.sort_values(ascending=False).head(12).index
            st.altair_chart(charts.compare_bars(m, df[df[label].isin(keep)], label, value),
                            width="stretch")  # fmt: skip
            st.caption(f"The {len(keep)} largest {label} values present in every repository.")
        else:
            totals = df.groupby("repository", as_index=False)[value].sum()
            st.altair_chart(charts.compare_bars(m, totals, None, value), width="stretch")
            st.caption(f"Total of {value} over all rows of each repository.")
with st.expander("Rows"):
    st.dataframe(df, hide_index=True, width="stretch")
