"""`levgym scenarios`: the scenario library as a table or JSON."""

from __future__ import annotations

import argparse

from .. import scenarios
from .common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenarios", help="list the named scenarios")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": s.name,
            "kind": s.kind,
            "description": s.description,
            "source": s.source,
            "knobs": s.knobs,
        }
        for s in scenarios.all_scenarios()
    ]
    if args.json:
        print_json(rows)
        return 0
    w_name = max(len(r["name"]) for r in rows)
    w_kind = max(len(r["kind"]) for r in rows)
    print(f"{'name':<{w_name}}  {'kind':<{w_kind}}  description  [source]")
    for r in rows:
        print(f"{r['name']:<{w_name}}  {r['kind']:<{w_kind}}  {r['description']}  [{r['source']}]")
    return 0
