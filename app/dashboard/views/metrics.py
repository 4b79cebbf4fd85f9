"""Metrics: the whole catalogue (plugins included), and any metric of any repository."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.dashboard import charts, data, widgets
from metrics.api import COMMON_PARAMETERS, Metric, Parameter, Shape


def _parameter_text(p: dict[str, Any]) -> str:
    default = p["default"] if p["default"] not in ("", None) else "none"
    choices = f" ∈ {{{', '.join(map(str, p['choices']))}}}" if p["choices"] else ""
    return f"{p['name']}: {p['type']}{choices} = {default}"


st.title("Metrics")
catalogue = list(data.registry())
st.dataframe(
    pd.DataFrame([
        {"metric": d["name"], "description": d["description"], "unit": d["unit"],
         "shape": d["shape"], "entity": d["entity"] or "", "version": d["version"],
         "parameters": "; ".join(_parameter_text(p) for p in d["parameters"]),
         "plugin": d["plugin"] or ""}
        for d in (m.describe() for m in catalogue)
    ]),
    hide_index=True, width="stretch", height=35 * (len(catalogue) + 1) + 3,
    column_config={"description": st.column_config.TextColumn(width="large"),
                   "parameters": st.column_config.TextColumn(width="large")},
)  # fmt: skip
st.caption(
    f"{len(catalogue)} metrics. Every metric takes since and until (inclusive author days, UTC)."
)

st.header("Look at a metric")
record = widgets.repository_selector(key="metrics_repo")
if record is None:
    st.stop()
names = [m.name for m in catalogue]
name = st.selectbox("Metric", names, key="metrics_metric",
                    index=names.index("commits") if "commits" in names else 0,
                    format_func=lambda n: f"{n} ({data.metric(n).unit})")  # fmt: skip
m: Metric = data.metric(name)


def _input(p: Parameter, key: str) -> Any:
    label = p.name
    if p.choices:
        return st.selectbox(label, list(p.choices), index=list(p.choices).index(p.default), key=key)
    if p.type == "bool":
        return st.checkbox(label, value=bool(p.default), key=key)
    if p.type == "int":
        return st.number_input(label, value=int(p.default), step=1, key=key)
    if p.type == "float":
        return st.number_input(label, value=float(p.default), key=key, format="%g")
    placeholder = "YYYY-MM-DD" if p.type == "date" else ""
    return st.text_input(label, value=str(p.default or ""), placeholder=placeholder, key=key)


params: dict[str, Any] = {}
declared = (*m.parameters, *COMMON_PARAMETERS)
with st.expander("Parameters", expanded=bool(m.parameters)):
    cols = st.columns(min(4, len(declared)))
    for i, p in enumerate(declared):
        with cols[i % len(cols)]:
            value = _input(p, f"param_{m.name}_{p.name}")
        if value != p.default:
            params[p.name] = value
st.caption(
    f"{m.description} · unit: {m.unit} · shape: {m.shape} · parameters: {data.parameters_text(params)}"
)

entry = data.load(record, m.name, params)
if entry.needs_run or not data.is_ingested(record):
    widgets.stale_notice(record, [entry], auto=False)
if entry.error:
    st.error(f"{m.name}: {widgets.md(entry.error)}")
elif entry.rows is None:
    st.info(f"{m.name}: not computed yet (computing).")
else:
    if not entry.fresh:
        st.caption(f":orange[stale: computed {entry.computed_at} from an older history]")
    if m.shape == Shape.SERIES:
        period = params.get("period") or next(
            (p.default for p in m.parameters if p.name == "period"), ""
        )
        st.altair_chart(charts.generic_series(m, entry.rows, period), width="stretch")
    elif m.shape == Shape.SCALAR and entry.rows:
        row = entry.rows[0]
        value = row.get("value")
        st.metric(
            f"{m.name} ({m.unit})", f"{value:.4g}" if isinstance(value, float) else str(value)
        )
        extra = {k: v for k, v in row.items() if k != "value"}
        if extra:
            st.json(extra, expanded=False)
    elif m.shape == Shape.TABLE:
        bars = charts.generic_table(m, entry.rows)
        if bars is not None:
            st.altair_chart(bars, width="stretch")
    st.dataframe(entry.rows, hide_index=True, width="stretch")
