"""An example metric plugin for repometer."""

from metrics import Shape, metric


@metric(version=1, unit="commits", shape=Shape.SCALAR)
def weekend_commits(ctx, *, exclude_bots: bool = True):
    """Commits authored on a Saturday or Sunday, in the author's own time zone."""
    df = ctx.commits(["author_local_weekday"], exclude_bots=exclude_bots)
    weekend = int((df["author_local_weekday"] >= 5).sum())
    return {"value": weekend, "share": weekend / len(df) if len(df) else 0.0}
