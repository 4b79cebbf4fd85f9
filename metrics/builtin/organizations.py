"""Organisations, from author email domains.

A domain maps to an organisation through the ``organizations`` parameter
(``"corp.com=Corp,corp.co.uk=Corp"``; a mapped domain also covers its subdomains), else the
domain itself is the organisation. Authors on public mail providers are independent: each
one counts as an organisation of their own, so that gmail.com never looks like a company.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from metrics.api import ParameterError, Shape, metric
from metrics.builtin._common import smallest_group_reaching

PUBLIC_MAIL_PROVIDERS = frozenset({
    "gmail.com", "googlemail.com", "hotmail.com", "hotmail.co.uk", "outlook.com", "live.com",
    "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com", "icloud.com",
    "me.com", "mac.com", "aol.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "protonmail.com",
    "proton.me", "pm.me", "mail.ru", "yandex.ru", "yandex.com", "qq.com", "163.com", "126.com",
    "fastmail.com", "fastmail.fm", "zoho.com", "hey.com", "posteo.de", "mailbox.org",
    "tutanota.com", "free.fr", "orange.fr", "laposte.net", "libero.it", "seznam.cz",
    "users.noreply.github.com", "users.noreply.gitlab.com", "localhost", "(none)",
})  # fmt: skip


def parse_organizations(text: str) -> dict[str, str]:
    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        domain, sep, org = item.partition("=")
        if not sep or not domain.strip() or not org.strip():
            raise ParameterError(f"organizations: expected domain=Organisation, not {item!r}")
        mapping[domain.strip().lower()] = org.strip()
    return mapping


def organization_of(domain: str | None, email: str, mapping: dict[str, str]) -> str:
    if domain:
        parts = domain.split(".")
        for i in range(len(parts) - 1):
            mapped = mapping.get(".".join(parts[i:]))
            if mapped:
                return mapped
    if not domain or domain in PUBLIC_MAIL_PROVIDERS:
        return f"independent: {email}"
    return domain


def _by_organization(ctx, organizations: str, exclude_bots: bool) -> pd.DataFrame:
    mapping = parse_organizations(organizations)
    df = ctx.aggregate(["email_domain", "mailmap_email"], exclude_bots=exclude_bots)
    df["organization"] = [
        organization_of(d, e or "", mapping)
        for d, e in zip(df["email_domain"], df["mailmap_email"], strict=True)
    ]
    return df.groupby("organization").agg(
        commits=("commits", "sum"), authors=("mailmap_email", "nunique")
    )


@metric(version=1, unit="organizations", shape=Shape.SCALAR)
def elephant_factor(
    ctx, *, share: float = 0.5, organizations: str = "", exclude_bots: bool = False
) -> dict[str, Any]:
    """Elephant Factor: fewest organisations making 50 % of the commits."""
    orgs = _by_organization(ctx, organizations, exclude_bots)
    n, names = smallest_group_reaching(orgs["commits"], share)
    return {"value": n, "organizations": names, "total_organizations": len(orgs)}


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="organization")
def organizational_diversity(
    ctx, *, organizations: str = "", exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Organizational Diversity: commits, authors and share of commits per organisation."""
    orgs = _by_organization(ctx, organizations, exclude_bots)
    total = orgs["commits"].sum()
    rows = [
        {"organization": org, "value": int(r.commits), "authors": int(r.authors),
         "share": r.commits / total if total else 0.0}
        for org, r in orgs.iterrows()
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["organization"]))
