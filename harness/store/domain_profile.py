"""The authorized-domain profile: for a soft-censored term, which domains still show results.

For each domain, the term + truism restricted to that domain (``soft_test.probe``) is
sent, after the truism alone restricted to the same domain (``soft_test.control``) has
shown that the domain has results at all. Cells:

- ``allowed``: results from that domain still appear for the term (an authorized source);
- ``withheld``: the domain has results for the truism but none for the term;
- ``no_control``: the domain had no results even for the truism: nothing can be said;
- ``failure:CODE``: the request failed.

The Citizen Lab published such term × domain matrices for Baidu, Bing and Sogou
("Missing Links", 2023, ``search/authorized-domains/``). Rows live in the store's
``domain_profile`` table, one per (run, platform, term, domain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sqlite import Store, iso, utcnow

STATES = ("allowed", "withheld", "no_control")


def save_profile_cell(store: Store, run_id: str, platform: str, term: str, domain: str, state: str, query: str,
                      body_sha256: str | None) -> None:
    store.conn.execute(
        "INSERT OR REPLACE INTO domain_profile (run_id, platform, input, domain, state, query, body_sha256, measured_at)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (run_id, platform, term, domain, state, query, body_sha256, iso(utcnow())),
    )


@dataclass
class DomainProfile:
    run_id: str
    platform: str
    domains: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    cells: dict[str, dict[str, str]] = field(default_factory=dict)  # term -> domain -> state

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "platform": self.platform, "domains": self.domains, "terms": self.terms,
                "cells": self.cells}


def load_profiles(store: Store, run_id: str, platform: str | None = None) -> list[DomainProfile]:
    sql = "SELECT platform, input, domain, state FROM domain_profile WHERE run_id=?"
    args: list[str] = [run_id]
    if platform:
        sql += " AND platform=?"
        args.append(platform)
    sql += " ORDER BY platform, rowid"
    profiles: dict[str, DomainProfile] = {}
    for row in store.conn.execute(sql, args):
        prof = profiles.setdefault(row["platform"], DomainProfile(run_id, row["platform"]))
        if row["domain"] not in prof.domains:
            prof.domains.append(row["domain"])
        if row["input"] not in prof.terms:
            prof.terms.append(row["input"])
        prof.cells.setdefault(row["input"], {})[row["domain"]] = row["state"]
    return list(profiles.values())
