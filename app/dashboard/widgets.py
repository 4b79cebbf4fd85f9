"""Pieces the pages share: the repository selector, the history filters, run panels, and how a
metric's result is framed (stale marks, errors, captions)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import streamlit as st

from app.dashboard import data
from repometer.storage import RepositoryRecord
from repometer.storage.store import RunRecord

#: seconds between two looks at a running run
POLL_SECONDS = 2.0
#: a run panel stops refreshing itself after this long (the page still shows the last state)
FOLLOW_SECONDS = 3600.0
PERIODS = ["day", "week", "month"]

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=^])")


def md(text: object) -> str:
    """Repository data (names, URLs, errors, author names) as literal text in Streamlit
    Markdown: every character Markdown acts on is backslash-escaped, so that a repository
    brings no HTML, link, image (a request to its host), colour directive or formula."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def ago(iso: str | None) -> str:
    """An ISO timestamp as "3 h ago" ("never" for None)."""
    if not iso:
        return "never"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def repository_selector(label: str = "Repository", key: str = "repo") -> RepositoryRecord | None:
    """A selectbox of the registered repositories; ``?repo=NAME`` in the URL preselects one."""
    records = data.repositories()
    if not records:
        st.info("No repository is registered yet: add one on the Repositories page.")
        st.page_link("views/repositories.py", label="Go to Repositories", icon=":material/list:")
        return None
    names = [r.name for r in records]
    wanted = st.query_params.get("repo")
    if key not in st.session_state or (
        wanted and wanted != st.session_state.get(f"{key}_from_url")
    ):
        found = data.find_repository(wanted) if wanted else None
        st.session_state[key] = found.name if found else st.session_state.get(key, names[0])
        st.session_state[f"{key}_from_url"] = wanted
    if st.session_state[key] not in names:
        st.session_state[key] = names[0]
    name = st.columns([2, 3])[0].selectbox(label, names, key=key)
    st.query_params["repo"] = name
    st.session_state[f"{key}_from_url"] = name
    return next(r for r in records if r.name == name)


def default_period(span: tuple[date, date] | None) -> str:
    if span is None:
        return "week"
    days = (span[1] - span[0]).days
    return "day" if days <= 31 else "week" if days <= 180 else "month"


def history_filters(record: RepositoryRecord | None, *, period: bool = True) -> dict[str, Any]:
    """Sidebar controls applied to every chart: date range, bots, period.

    Returns metric parameters; a range covering the whole history is no filter at all, so
    that the cached default results are used.
    """
    wanted: dict[str, Any] = {}
    with st.sidebar:
        st.subheader("Filters")
        span = data.day_range(record) if record is not None else None
        if span is not None:
            lo, hi = span
            key = f"range_{record.id}"
            kept = st.session_state.get(key)
            if kept and any(d is not None and not lo <= d <= hi for d in kept):
                del st.session_state[key]  # the history changed (force-push): start afresh
            picked = st.date_input("Author dates (UTC)", value=(lo, hi), min_value=lo,
                                   max_value=hi, key=key,
                                   help="since / until: inclusive author days")  # fmt: skip
            ends = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
            start, end = (ends + (None, None))[:2]
            if start and start > lo:
                wanted["since"] = start.isoformat()
            if end and end < hi:
                wanted["until"] = end.isoformat()
        else:
            since = st.date_input("Since (UTC author day)", value=None, key="since_any")
            until = st.date_input("Until (UTC author day)", value=None, key="until_any")
            if since:
                wanted["since"] = since.isoformat()
            if until:
                wanted["until"] = until.isoformat()
        if st.toggle("Exclude bots", key="exclude_bots",
                     help="exclude_bots, for the metrics that take it"):  # fmt: skip
            wanted["exclude_bots"] = True
        if period:
            st.session_state.setdefault("period", default_period(span))
            chosen = st.segmented_control("Period", PERIODS, key="period",
                                          help="grouping of the charts over time")  # fmt: skip
            wanted["period"] = chosen or default_period(span)
    return wanted


def run_label(run: RunRecord) -> str:
    return {"analyze": "ingest and compute", "compute": "compute"}.get(run.kind, run.kind)


def show_run(run: RunRecord, title: str = "") -> None:
    """A run's state; refreshed every few seconds while it is active, and the whole page is
    rerun (caches cleared) when it finishes."""
    if run.finished:
        _finished(run, title)
        return
    started = st.session_state.setdefault(f"follow_{run.id}", time.monotonic())
    if time.monotonic() - started > FOLLOW_SECONDS:
        st.info(f"{title}run {run.id[:8]} is still {run.status}: reload the page to look again.")
        return

    @st.fragment(run_every=POLL_SECONDS)
    def panel() -> None:
        current = data.follow(run.id) or run
        if current.finished:
            data.clear_caches()
            st.rerun()
        fraction, text = data.progress(current)
        line = f"{title}{run_label(current)} run {current.id[:8]} {current.status}: {text}"
        if fraction is None:
            st.progress(0.0, text=line + " …")
        else:
            st.progress(fraction, text=line)

    panel()


def _finished(run: RunRecord, title: str) -> None:
    if run.status == "completed":
        st.success(f"{title}{run_label(run)} run {run.id[:8]} completed.", icon=":material/check:")
    else:
        reason = run.error or "no reason recorded"
        st.error(f"{title}{run_label(run)} run {run.id[:8]} {run.status}: {md(reason)}")


def metric_caption(loaded: data.Loaded) -> None:
    m = loaded.metric
    bits = [m.description, f"unit: {m.unit}"]
    if loaded.computed_at:
        bits.append(f"computed {loaded.computed_at}")
    st.caption(" · ".join(bits))


def framed(
    loaded: data.Loaded, draw: Callable[[data.Loaded], None], *, title: str | None = None
) -> None:
    """A metric's subheader, its chart (or why there is none), and a stale mark when needed."""
    st.markdown(f"**{title or loaded.name.replace('_', ' ').capitalize()}**")
    if loaded.rows is None:
        if loaded.error:
            st.error(f"{loaded.name}: {md(loaded.error)}")
        else:
            st.info(
                f"{loaded.name}: not computed yet (computing).", icon=":material/hourglass_empty:"
            )
        return
    if loaded.error:
        st.error(f"{loaded.name} failed: {md(loaded.error)}")
        return
    if not loaded.fresh:
        st.caption(
            f":orange[stale: computed {loaded.computed_at} from an older history; recomputing]"
        )
    for note in loaded.notes:
        st.caption(f":orange[{note}]")
    draw(loaded)
    metric_caption(loaded)


def stale_notice(record: RepositoryRecord, loaded: list[data.Loaded], *, auto: bool = True) -> bool:
    """When results are missing or stale (or the history is not ingested): a notice, the run
    that computes them (started at once with ``auto``, else by a button) and its state.
    True when such a notice was shown."""
    missing = [entry for entry in loaded if entry.needs_run]
    if data.is_ingested(record) and not missing:
        return False
    run = data.active_run(record) or (data.ensure_run(record, _stale(record, missing)) if auto
                                       else data.started_run(record))  # fmt: skip
    doing = "computing" if run is not None else "not computing"
    if not data.is_ingested(record):
        if record.status == "failed":
            st.error(f"{md(record.name)} could not be ingested: {md(record.error)}")
        st.warning(f"{md(record.name)} has not been ingested yet ({doing}: ingest, then every "
                   "metric). Charts appear when the run finishes.", icon=":material/hourglass_top:")  # fmt: skip
    else:
        cached = sum(1 for entry in missing if entry.rows is not None)
        st.warning(f"{len(missing)} result(s) of {md(record.name)} are missing or stale for the current "
                   f"history: showing what is cached ({cached} stale), {doing} them.",
                   icon=":material/hourglass_top:")  # fmt: skip
    if run is not None:
        show_run(run)
    if (run is None or run.finished) and st.button(
        "Compute now" if run is None else "Compute again", key=f"compute_{record.id}"
    ):
        data.restart_run(record, _stale(record, missing))
        st.rerun()
    return True


def _stale(record: RepositoryRecord, missing: list[data.Loaded]) -> list[str]:
    """What a compute run should do: every stale default result (the ones shown included)."""
    return data.overview(record)["stale"] or sorted({entry.name for entry in missing})
