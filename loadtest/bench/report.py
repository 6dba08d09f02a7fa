#!/usr/bin/env python3
"""Writes the benchmark part of docs/PERF_RESULT.md (and its SVG charts) from
target/bench/**.json. Python 3 standard library only.

    report.py                   # regenerate docs/PERF_RESULT.md between the markers
    report.py --summary         # print the summary table to stdout
    report.py --doc /tmp/x.md   # write a scratch copy instead (charts in /tmp/perf/)

Only the text between `<!-- bench:begin -->` and `<!-- bench:end -->` is
replaced; everything else in the file (e.g. the waiting-room SSE section) is
kept as it is. Without markers the generated part is appended.
"""
import glob
import json
import math
import os
import statistics
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.abspath(os.environ.get("BENCH_OUT", os.path.join(ROOT, "target", "bench")))
DOC = os.path.join(ROOT, "docs", "PERF_RESULT.md")
NOTES = os.path.join(os.path.dirname(__file__), "ANALYSIS.md")
# The figures of the tables before the steady-state work, for "before / after".
BEFORE = os.path.join(os.path.dirname(__file__), "before-2026-11-24.json")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
STRATEGIES = ["pessimistic", "optimistic", "redis"]
SCENARIOS = ["A-ref", "A-design", "B-ref", "B-design", "C-ref", "C-design", "H-off", "H-on"]
RUNS = 3
COLORS = {"pessimistic": "#4e79a7", "optimistic": "#f28e2b", "redis": "#e15759"}
TITLES = {
    "A": "A, hot seat: N users book the same single seat at once (exactly 1 may win)",
    "B": "B, distinct seats: N users each book a different seat at once (all must win)",
    "C": "C, mixed: ramp 0 -> N VUs in 10 s, 30 s steady; 70% seat map, 30% bookings (80% on the hottest 20%)",
    "H": "H, headline: 10,000 users for 1,000 seats, each booking 1-2 seats and paying at once; H-off arrives as "
         "a 5 s spike (2,000/s, open model, k6), H-on is a sale through the waiting room (sse-load sale)",
    "S": "S, steady state: holds of distinct free seats at a constant arrival rate, a rate ladder per strategy",
}
SIZES = {
    "A-ref": "100 VUs, 1 seat", "A-design": "1,000 VUs, 1 seat",
    "B-ref": "50 VUs, 50 seats", "B-design": "1,000 VUs, 1,000 seats",
    "C-ref": "200 VUs, 50 seats", "C-design": "1,000 VUs, 1,000 seats",
    "H-off": "waiting room off (raw strategy)",
    "H-on": "waiting room on: a sale opening at salesOpenAt, buyers waiting on the SSE stream (enter -> admitted -> book -> pay)",
}


def load():
    runs = {}
    for path in glob.glob(os.path.join(OUT, "*", "*-*.json")):
        try:
            with open(path) as f:
                r = json.load(f)
        except (OSError, ValueError):
            continue
        if "strategy" not in r or r.get("scenario") not in SCENARIOS:
            continue
        runs.setdefault((r["strategy"], r["scenario"]), []).append(r)
    for v in runs.values():
        v.sort(key=lambda r: r["run"])
    return runs


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ms(rs, key):
    vals = [get(r, key) for r in rs]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def get(r, key):
    cur = r
    for k in key.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def fmt(mean, sd, digits=0):
    if mean is None:
        return "—"
    s = f"{mean:,.{digits}f}"
    if sd:
        s += f" ± {sd:,.{digits}f}"
    return s


def total(rs, key):
    return sum(get(r, key) or 0 for r in rs)


def drain_time(rs):
    """The slowest drain of the runs' outbox backlogs, e.g. "0.4", or "> 10"."""
    outs = [r["outbox"] for r in rs if r.get("outbox")]
    if not outs:
        return "—"
    if any(o["seconds_to_zero"] is None for o in outs):
        return f"> {max(o['wait_limit_s'] for o in outs):.0f}"
    return f"{max(o['seconds_to_zero'] for o in outs):.1f}"


def scenario_rows(runs, scen):
    rows = []
    for st in STRATEGIES:
        rs = runs.get((st, scen), [])
        if not rs:
            rows.append(f"| {st} | 0 | — | — | — | — | — | — | — | — | — | — | — | — | — | — | not run |")
            continue
        viol = sum(len(r["audit"]["violations"]) for r in rs)
        failed = sorted({t for r in rs for t in r["k6"]["thresholds_failed"]})
        cells = [
            st, str(len(rs)),
            fmt(*ms(rs, "k6.rps")), fmt(*ms(rs, "k6.holds_per_s")),
            fmt(*ms(rs, "k6.hold_ms.p50"), 1), fmt(*ms(rs, "k6.hold_ms.p95"), 1),
            fmt(*ms(rs, "k6.hold_ms.p99"), 1), fmt(*ms(rs, "k6.hold_ms.max"), 0),
            fmt(*ms(rs, "k6.holds_ok")), fmt(*ms(rs, "k6.holds_conflict")), fmt(*ms(rs, "k6.holds_other")),
            str(total(rs, "oversell")), str(int(total(rs, "k6.server_errors"))),
            fmt(*ms(rs, "k6.dropped_iterations")),
            fmt(*ms(rs, "outbox.backlog")), drain_time(rs),
            (f"{viol} violations" if viol else "0 violations") +
            (f"; history: {history_cell(rs)}" if any(r.get("history") for r in rs) else "") +
            (f"; thresholds failed: {', '.join(failed)}" if failed else "") +
            ("" if len(rs) >= RUNS else f"; **{RUNS - len(rs)} run(s) missing**"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    head = ("| strategy | runs | req/s | holds/s | hold p50 ms | hold p95 ms | hold p99 ms | hold max ms | "
            "201 | 409 | other | oversell | 5xx | dropped iter. | outbox backlog | backlog to 0, s | audit |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    return head + "\n" + "\n".join(rows)


def history_cell(rs):
    """The history checker's verdicts of the runs (loadtest/history), summed:
    operations, acknowledged, anomalies; runs from before the checker say so."""
    checked = [r["history"] for r in rs if r.get("history")]
    if not checked:
        return "not recorded"
    ops = sum(h["operations"] for h in checked)
    acked = sum(h["acknowledged"] for h in checked)
    anomalies = sum(len(h["anomalies"]) for h in checked)
    runs = f" ({len(checked)} of {len(rs)} runs)" if len(checked) < len(rs) else ""
    return f"{ops:,} operations ({acked:,} acknowledged), {anomalies} anomalies{runs}"


def queue_rows(runs):
    """H-on, the sale (sse-load sale): the issue's figures, mean ± sd of the runs."""
    out = ["| strategy | runs | seats sold | opening to last seat sold, s | admitted | wait p50 s | wait p95 s | "
           "sold-out after last seat, max s | ... p95 s | no answer | inversions | 5xx | connection errors | "
           "aims met | history check |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for st in STRATEGIES:
        rs = [r for r in runs.get((st, "H-on"), []) if r.get("sale")]
        if not rs:
            out.append(f"| {st} | 0 | — | — | — | — | — | — | — | — | — | — | — | — | — |")
            continue
        missed = sorted({k for r in rs for k, ok in r["sale"]["aims"].items() if not ok})
        met = sum(1 for r in rs if all(r["sale"]["aims"].values()))
        out.append("| " + " | ".join([
            st, str(len(rs)), fmt(*ms(rs, "sale.sold.seatsSold")),
            fmt(*ms(rs, "sale.sold.lastSeatSoldSecs"), 1), fmt(*ms(rs, "sale.admission.admitted")),
            fmt(*ms(rs, "sale.admission.waitSecs.p50"), 1), fmt(*ms(rs, "sale.admission.waitSecs.p95"), 1),
            fmt(*ms(rs, "sale.soldOut.afterLastSeatSecs.max"), 2), fmt(*ms(rs, "sale.soldOut.afterLastSeatSecs.p95"), 2),
            fmt(*ms(rs, "sale.unanswered")), fmt(*ms(rs, "sale.admission.inversions")),
            str(int(total(rs, "sale.errors.serverErrors"))), str(int(total(rs, "sale.errors.connectionErrors"))),
            f"{met}/{len(rs)} runs" + (f"; missed: {', '.join(missed)}" if missed else ""),
            history_cell(rs),
        ]) + " |")
    return "\n".join(out)


def load_steady():
    """Each strategy's ladder (target/bench/<strategy>/steady.json)."""
    out = {}
    for st in STRATEGIES:
        r = read_json(os.path.join(OUT, st, "steady.json"))
        if r:
            out[st] = r
    return out


def pct(x, y):
    return f"{x / y:.1%}" if x is not None and y else "—"


def seconds_to_zero(o):
    if not o:
        return "—"
    if o["seconds_to_zero"] is None:
        return f"> {o['wait_limit_s']:.0f}"
    return f"{o['seconds_to_zero']:.1f}"


def steady_section(steady, hold):
    """The sustained rate of each strategy, then every step of its ladder."""
    limit = hold and hold["tps"]
    out = ["| strategy | sustained holds/s | ÷ pgbench hold limit | hold p50 ms | hold p99 ms | "
           "outbox backlog | backlog to 0, s | first missed | audit |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for st in STRATEGIES:
        lad = steady.get(st)
        if not lad:
            out.append(f"| {st} | — | — | — | — | — | — | not run | — |")
            continue
        at = lad["at_sustained"]
        missed = next((s for s in lad["steps"] if not s["ok"] and s["rate"] == lad["first_missed_per_s"]), None)
        out.append("| " + " | ".join([
            st, fmt(lad["sustained_per_s"], 0) if lad["sustained_per_s"] else "none met",
            pct(lad["sustained_per_s"], limit),
            fmt(at["hold_ms"]["p50"], 0, 1) if at else "—", fmt(at["hold_ms"]["p99"], 0, 1) if at else "—",
            fmt(at["outbox"]["backlog"], 0) if at else "—", seconds_to_zero(at and at["outbox"]),
            f"{missed['rate']:,}/s: {missed['reason']}" if missed else "none (top of the ladder)",
            f"{lad['violations']} violations",
        ]) + " |")
    rated = {st: (lad["sustained_per_s"] or 0) / limit for st, lad in steady.items()} if limit else {}
    if rated and limit:
        best = max(rated, key=rated.get)
        low = min(rated, key=rated.get)
        at = hold.get("measured_at", "?").replace("T", " ")
        out += ["", f"Of the pgbench hold limit ({limit:,.0f} holds/s, measured {at}): best **{best}** at "
                f"{rated[best]:.0%}, lowest **{low}** at {rated[low]:.0%} (the aim: best >= 50%, every "
                "strategy >= 35%)."]
    out += ["", "Every step of the ladders (a step is met when hold p99 < "
            f"{next(iter(steady.values()))['p99_limit_ms'] if steady else 100:.0f} ms, no 5xx, every hold "
            "answered 201, at most 1% of arrivals dropped and at least 95% of the target rate achieved):", "",
            "| strategy | step | target holds/s | achieved holds/s | hold p50 ms | hold p99 ms | dropped | 5xx | "
            "outbox backlog | backlog to 0, s | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for st in STRATEGIES:
        for s in (steady.get(st) or {}).get("steps", []):
            out.append("| " + " | ".join([
                st, str(s["step"]), f"{s['rate']:,}", fmt(s["achieved_per_s"], 0),
                fmt(s["hold_ms"]["p50"], 0, 1), fmt(s["hold_ms"]["p99"], 0, 1),
                fmt(s["dropped_iterations"], 0), fmt(s["server_errors"], 0),
                fmt(s["outbox"]["backlog"], 0), seconds_to_zero(s["outbox"]),
                "met" if s["ok"] else f"missed: {s['reason']}",
            ]) + " |")
    return "\n".join(out)


def limit_section(runs, steady, pg, hold, hc):
    out = []
    if hold:
        per = ", ".join(f"{r['clients']} clients {r['tps']:,.0f}/s" for r in hold["runs"])
        out.append(f"- **pgbench hold limit** (exactly the writes of a hold in one statement, autocommit, prepared: "
                   f"lock one AVAILABLE seat `FOR UPDATE`, mark it HELD, insert the PENDING reservation, its "
                   f"`reservation_seats` row and its `reservation.held` outbox row; every transaction a seat never "
                   f"asked for), {hold['seconds']} s a client count ({per}): "
                   f"**{hold['tps']:,.0f} holds/s** at {hold['clients']} clients, average latency "
                   f"{hold['latency_avg_ms']} ms. The steady-state ratios below are to this figure.")
    else:
        out.append("- pgbench hold limit: **not measured** (run `just bench-limits`).")
    if pg:
        out.append(f"- **pgbench seat claim** (the limit of the earlier tables: one conditional `UPDATE seats ... "
                   f"WHERE status = 'AVAILABLE'` of a random seat + the reservation and reservation_seats "
                   f"`INSERT`s, no outbox row, in one statement, autocommit), "
                   f"{pg['clients']} clients (= the two instances' pools of 16), {pg['seconds']} s: "
                   f"**{pg['tps']:,.0f} claims/s**, average latency {pg['latency_avg_ms']} ms.")
    else:
        out.append("- pgbench seat claim: **not measured** (run `just bench-limits`).")
    if hc:
        out.append(f"- **HTTP ceiling**: k6, {hc['vus']} VUs, `GET /health/live` alternating on both instances, "
                   f"{hc['seconds']} s: **{hc['rps']:,.0f} req/s** (p50 {hc['p50_ms']:.1f} ms, "
                   f"p95 {hc['p95_ms']:.1f} ms), k6 on the same 2 cores.")
    else:
        out.append("- HTTP ceiling: **not measured** (run `just bench-limits`).")
    out.append("")
    out.append("| strategy | S sustained holds/s | ÷ pgbench hold limit | B-design holds/s | ÷ pgbench claims/s | "
               "C-design req/s | ÷ HTTP ceiling | C-design holds/s | ÷ pgbench claims/s |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for st in STRATEGIES:
        sus = (steady.get(st) or {}).get("sustained_per_s")
        b = ms(runs.get((st, "B-design"), []), "k6.holds_per_s")[0]
        c = ms(runs.get((st, "C-design"), []), "k6.rps")[0]
        ch = ms(runs.get((st, "C-design"), []), "k6.holds_per_s")[0]
        out.append(f"| {st} | {fmt(sus, 0)} | {pct(sus, hold and hold['tps'])} | {fmt(b, 0)} | "
                   f"{pct(b, pg and pg['tps'])} | {fmt(c, 0)} | {pct(c, hc and hc['rps'])} | {fmt(ch, 0)} | "
                   f"{pct(ch, pg and pg['tps'])} |")
    return "\n".join(out)


def after_figures(runs, steady, pg, hold, hc):
    """This run's figures under the names of the before file."""
    per = {}
    for st in STRATEGIES:
        sold = lambda scen: [r["audit"]["reserved"] for r in runs.get((st, scen), [])]
        per[st] = {
            "S sustained holds/s": (steady.get(st) or {}).get("sustained_per_s"),
            "B-design holds/s": ms(runs.get((st, "B-design"), []), "k6.holds_per_s")[0],
            "C-design req/s": ms(runs.get((st, "C-design"), []), "k6.rps")[0],
            "C-design hold p99 ms": ms(runs.get((st, "C-design"), []), "k6.hold_ms.p99")[0],
            "H-off hold p99 ms": ms(runs.get((st, "H-off"), []), "k6.hold_ms.p99")[0],
            "H-off seats sold": statistics.mean(sold("H-off")) if sold("H-off") else None,
            "H-on seats sold": statistics.mean(sold("H-on")) if sold("H-on") else None,
        }
    lim = {"pgbench hold limit/s": hold and hold["tps"], "pgbench seat claim/s": pg and pg["tps"],
           "HTTP ceiling req/s": hc and hc["rps"]}
    return per, lim


def before_after(runs, steady, pg, hold, hc):
    before = read_json(BEFORE)
    if not before:
        return "(loadtest/bench/before-2026-11-24.json is missing)"
    per, lim = after_figures(runs, steady, pg, hold, hc)
    starts = sorted([r["started_at"] for v in runs.values() for r in v if r.get("started_at")]
                    + [lad["finished_at"] for lad in steady.values()])
    when = starts[-1][:10] if starts else "latest run"

    def row(who, name, b, a):
        digits = 1 if name.endswith(" ms") or name.endswith(" sold") else 0
        change = f"{(a - b) / b:+.0%}" if a is not None and b else "—"
        return f"| {who} | {name} | {fmt(b, 0, digits)} | {fmt(a, 0, digits)} | {change} |"
    out = [f"Before: {before['source']}. After: this run ({when}). Hold p99 is lower-is-better; the rest "
           "higher-is-better. S and the pgbench hold limit did not exist before. C now revalidates the seat map with "
           "`If-None-Match` (304s without a body), so C-design req/s is not the same workload as before.", "",
           f"| strategy | figure | {before['label']} | after ({when}) | change |", "|---|---|---:|---:|---:|"]
    for st in STRATEGIES:
        for name, a in per[st].items():
            out.append(row(st, name, before["strategies"][st].get(name), a))
    for name, a in lim.items():
        out.append(row("limits", name, before["limits"].get(name), a))
    return "\n".join(out)


def bar_chart(runs, key, title, unit, path, skip=()):
    """Grouped bars: one group per scenario, one bar per strategy (mean of the runs)."""
    groups = [s for s in SCENARIOS if s not in skip and any(runs.get((st, s)) for st in STRATEGIES)]
    if not groups:
        return False
    vals = {(st, s): ms(runs.get((st, s), []), key)[0] for st in STRATEGIES for s in groups}
    top = max([v for v in vals.values() if v] or [1])
    step = 10 ** math.floor(math.log10(top))
    for m in (1, 2, 5, 10):
        if top / (step * m) <= 6:
            step *= m
            break
    top = math.ceil(top / step) * step
    W, H, L, R, T, B = 860, 380, 70, 20, 50, 60
    pw, ph = W - L - R, H - T - B
    gw = pw / len(groups)
    bw = gw * 0.8 / len(STRATEGIES)
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>']
    y = 0
    while y <= top + 1e-9:
        py = T + ph - ph * y / top
        s.append(f'<line x1="{L}" y1="{py:.1f}" x2="{W - R}" y2="{py:.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{py + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
        y += step
    s.append(f'<text x="16" y="{T + ph / 2}" transform="rotate(-90 16 {T + ph / 2})" '
             f'text-anchor="middle">{unit}</text>')
    for gi, g in enumerate(groups):
        gx = L + gi * gw + gw * 0.1
        for si, st in enumerate(STRATEGIES):
            v = vals[(st, g)]
            x = gx + si * bw
            if v is None:
                s.append(f'<text x="{x + bw / 2:.1f}" y="{T + ph - 4}" text-anchor="middle" fill="#999">–</text>')
                continue
            h = ph * v / top
            s.append(f'<rect x="{x:.1f}" y="{T + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                     f'fill="{COLORS[st]}"><title>{st} {g}: {v:,.1f} {unit}</title></rect>')
        s.append(f'<text x="{L + gi * gw + gw / 2:.1f}" y="{T + ph + 18}" text-anchor="middle">{g}</text>')
    s.append(f'<line x1="{L}" y1="{T + ph}" x2="{W - R}" y2="{T + ph}" stroke="#333"/>')
    for si, st in enumerate(STRATEGIES):
        lx = L + si * 150
        s.append(f'<rect x="{lx}" y="{H - 22}" width="12" height="12" fill="{COLORS[st]}"/>')
        s.append(f'<text x="{lx + 18}" y="{H - 12}">{st}</text>')
    s.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")
    return True


def winners(runs):
    lines = []
    for scen in SCENARIOS:
        have = {st: runs.get((st, scen)) for st in STRATEGIES if runs.get((st, scen))}
        if len(have) < 2:
            continue
        by_p95 = sorted(have, key=lambda st: ms(have[st], "k6.hold_ms.p95")[0] or 1e18)
        by_rps = sorted(have, key=lambda st: -(ms(have[st], "k6.rps")[0] or 0))
        p = {st: ms(have[st], "k6.hold_ms.p95")[0] for st in have}
        lines.append(f"- {scen}: lowest hold p95 **{by_p95[0]}** ({p[by_p95[0]]:,.1f} ms vs "
                     + ", ".join(f"{st} {p[st]:,.1f}" for st in by_p95[1:])
                     + f"); most req/s **{by_rps[0]}**.")
    return "\n".join(lines)


def missing(runs):
    out = []
    for st in STRATEGIES:
        for scen in SCENARIOS:
            n = len(runs.get((st, scen), []))
            if n < RUNS:
                out.append(f"{st} {scen}: {n}/{RUNS} runs")
    return out


def machine_section(m, runs):
    if not m:
        return "(machine.json missing)"
    out = [
        f"- CPU: {m['nproc']} cores ({m['cpu']}), memory {m['memory']}, Linux {m['kernel']}",
        f"- {m['booking']}" + (f" at commit `{m['commit']}`" if m.get("commit") else "") + f"; {m['rustc']}",
        f"- PostgreSQL {m['postgres']}, Redis {m['redis']}, {m['pgbench']}, {m['k6']}, Python {m['python']}",
        "- Everything on this one machine over loopback, sharing the 2 cores: the two `booking` instances "
        "(2 HTTP workers each, DB pool 8 each: on 2 cores, 16 connections per instance cost more in context switches than they win), PostgreSQL, Redis, the Kafka-compatible broker (tansu) and k6.",
    ]
    every = [r for v in runs.values() for r in v]
    starts = sorted(r["started_at"] for r in every if r.get("started_at"))
    if starts:
        out.append(f"- Runs recorded between {starts[0].replace('T', ' ')} and {starts[-1].replace('T', ' ')} "
                   "(local time of the machine).")
    loads = sorted(r["loadavg_before"] for r in every if r.get("loadavg_before") is not None)
    if loads:
        out.append(f"- 1-minute load average just before a run (the previous run's tail included): "
                   f"median {statistics.median(loads):.1f}, max {loads[-1]:.1f}.")
    return "\n".join(out)


def not_modified(runs):
    """How many of C's seat-map reads were revalidated with a 304."""
    cells = []
    for scen in ("C-ref", "C-design"):
        for st in STRATEGIES:
            rs = [r for r in runs.get((st, scen), []) if "seat_maps_not_modified" in r["k6"]]
            reads = sum(r["k6"]["http_reqs"] - r["k6"]["hold_attempts"] for r in rs)
            if reads:
                cells.append(f"{scen} {st} {total(rs, 'k6.seat_maps_not_modified') / reads:.0%}")
    return ("Seat-map reads answered 304 (the VU's copy was current): " + ", ".join(cells) + "."
            if cells else "Seat-map reads answered 304: not recorded in these runs.")


def sold_rows(runs):
    """Seats sold in the database after each H run (from the audit), the number a box office cares about."""
    out = ["| strategy | H-off: seats sold of 1,000 | H-on: seats sold of 1,000 |", "|---|---:|---:|"]
    for st in STRATEGIES:
        cells = []
        for scen in ("H-off", "H-on"):
            rs = runs.get((st, scen), [])
            vals = [r["audit"]["reserved"] for r in rs]
            cells.append(", ".join(str(v) for v in vals) if vals else "—")
        out.append(f"| {st} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def generate(doc):
    runs = load()
    steady = load_steady()
    m = read_json(os.path.join(OUT, "machine.json"))
    pg = read_json(os.path.join(OUT, "limits", "pgbench.json"))
    hold = read_json(os.path.join(OUT, "limits", "pgbench_hold.json"))
    hc = read_json(os.path.join(OUT, "limits", "http.json"))
    perf = os.path.join(os.path.dirname(doc), "perf")
    charts = []
    if bar_chart(runs, "k6.rps", "Requests per second (mean of runs; higher is better)", "req/s",
                 os.path.join(perf, "throughput.svg")):
        charts.append("![throughput](perf/throughput.svg)")
    if bar_chart(runs, "k6.hold_ms.p95", "Booking latency p95, ms (mean of runs; lower is better; H-on left out)",
                 "ms", os.path.join(perf, "hold-p95.svg"), skip=("H-on",)):
        charts.append("![hold p95](perf/hold-p95.svg)")
    n = sum(len(v) for v in runs.values())
    viol = sum(len(r["audit"]["violations"]) for v in runs.values() for r in v)
    steps = sum(len(lad["steps"]) for lad in steady.values())
    viol += sum(lad["violations"] for lad in steady.values())
    miss = missing(runs) + [f"{st} S: no ladder" for st in STRATEGIES if st not in steady]
    parts = [BEGIN, "<!-- Generated by `just bench-report` (loadtest/bench/report.py) from target/bench/. "
             "Do not edit by hand between these markers. -->", "",
             "## Seat-locking strategies: the benchmark", "",
             "Reproduce: `just bench-all` (or `just bench-pessimistic` / `bench-optimistic` / `bench-redis`, "
             "then `just bench-limits` and `just bench-report`). Scenarios: `loadtest/k6/`; driver and audit: "
             "`loadtest/bench/bench.py`.", "",
             f"**{n} runs and {steps} steady-state steps, {viol} invariant violations** (every run is audited straight from the tables: no seat "
             "in two active reservations, sold + held <= capacity, seat statuses agree with reservations, "
             "payments agree with CONFIRMED reservations, Redis stock == AVAILABLE seats for the redis strategy).",
             ""]
    if miss:
        parts += ["> **Incomplete.** Not every strategy x scenario has its 3 runs (and its ladder) yet; a table "
                  "cell is the mean "
                  "(± sample standard deviation) of the runs that exist. Missing: " + "; ".join(miss) + ".", ""]
    parts += ["### Machine", "", machine_section(m, runs), "",
              "### How it is measured", "",
              "- Two instances, `127.0.0.1:8081` and `:8082`, started natively by the driver with "
              "`booking serve --strategy <s>`; k6 alternates requests between them (no load balancer in the path); "
              "in H-on the sale driver keeps each buyer to one instance and the buyers alternate, as behind a "
              "sticky balancer.",
              "- Before each run: a fresh concert and schedule through the admin API; 10,000 users inserted into "
              "a fresh database `booking_bench` once per strategy, and their JWTs minted (HS256, the servers' "
              "secret) into the data file, so no argon2 log-in is in the timed part.",
              "- The waiting room is off (`BOOKING__QUEUE__ENABLED=false`) for every scenario except H-on.",
              "- `req/s` is all HTTP requests of the run over its duration (k6 `http_reqs` rate); `holds/s` is "
              "booking attempts (`POST /api/reservations`, any answer) over the same duration; latencies are of "
              "`POST /api/reservations` only. 409 is an expected answer (seat taken, sold out, contention). "
              "Thresholds fail a run on any 5xx or more seats held than exist; the audit then checks the tables.",
              "- `dropped iter.` is k6's `dropped_iterations`: arrivals of the open model (H) k6 could not start. "
              "`other` is any other answer to a booking (403, 422, 503...); `5xx` counts every request of the run "
              "answered 5xx or not answered at all (k6 status 0).",
              "- A and B are bursts shorter than a second: their req/s is noisy (see the spread); latencies are "
              "the better comparison there. S is the steady-state throughput comparison.",
              "- In C each VU keeps the `ETag` of the last seat map it got and sends it as `If-None-Match`, as a "
              "browser revalidating its copy would; a 304 (no body) counts as a success.",
              "- S, steady state: k6 `constant-arrival-rate` holds, each of ONE seat no hold asked for before, on "
              "a fresh schedule per step of at least 100,000 seats (written with SQL in the shape the admin API "
              "writes; the API stops at 20,000 a schedule), by users taken in turn so that nobody holds more than "
              "4 seats of a schedule. One warm-up hold per instance precedes each step. The ladder doubles the "
              "rate until a step misses, then bisects; a step is met when hold p99 < 100 ms, no 5xx, every hold "
              "answered 201, at most 1% of arrivals dropped and 95% of the target rate achieved. A strategy's "
              "sustained rate is its highest step met.",
              "- `outbox backlog` is the number of outbox rows not yet published right after k6 ends; "
              "`backlog to 0` is how long the instances' relays then took to publish them all (polled for up to "
              "10 s; `> 10` when they did not). Worst of the runs.",
              ""]
    for letter in "ABCH":
        parts += [f"### {TITLES[letter]}", ""]
        for scen in [s for s in SCENARIOS if s.startswith(letter)]:
            parts += [f"#### {scen}: {SIZES[scen]}", "", scenario_rows(runs, scen), ""]
        if letter == "C":
            parts += [not_modified(runs), ""]
        if letter == "H":
            parts += ["Seats sold in the database after each run (the audit's RESERVED seats; every hold of "
                      "H is paid at once):", "", sold_rows(runs), ""]
            parts += ["Waiting room (H-on), a sale driven by `sse-load sale` (loadtest/sse-load; k6 cannot read "
                      "SSE): the schedule's `salesOpenAt` is 8 s after it is created; 90% of the 10,000 buyers "
                      "arrive in the 3 s before it (the pre-queue), the rest in the second after. Each enters, "
                      "takes a stream ticket and waits on `GET /api/queue/events` (no polling); on `admitted` it "
                      "holds 1-2 seats it believes free (`X-Queue-Token`, `Idempotency-Key`; another seat on "
                      "`seat-taken`) and pays at once, think time 0. `wait` is from the opening or the arrival, "
                      "whichever is later, to `admitted`; `sold-out after last seat` is each waiting buyer's "
                      "`sold-out` event after the last payment was answered; `no answer` is buyers neither "
                      "admitted nor told sold out when the driver stopped (120 s); `inversions` is pairs of "
                      "admitted buyers where the one ahead in the queue (drawn position in the pre-queue, then "
                      "arrival order) got `admittedAt` later. The aims (issue 14): all 1,000 seats sold, the last "
                      "within 15 s of the opening, every `sold-out` within 2 s of the last seat, no buyer without "
                      "an answer, no inversion, no 5xx.", "", queue_rows(runs), ""]
    parts += [f"### {TITLES['S']}", "", steady_section(steady, hold), ""]
    parts += ["### The limits, and each strategy as a ratio of them", "", limit_section(runs, steady, pg, hold, hc), "",
              "### Before / after", "", before_after(runs, steady, pg, hold, hc), "",
              "### Chart", ""] + charts + ["", "### Who wins where (computed from the tables)", "",
                                          winners(runs) or "(needs at least two strategies)", ""]
    if os.path.exists(NOTES):
        with open(NOTES) as f:
            parts += [f.read().strip(), ""]
    parts.append(END)
    section = "\n".join(parts)
    old = ""
    if os.path.exists(doc):
        with open(doc) as f:
            old = f.read()
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    elif old.strip():
        new = old.rstrip() + "\n\n" + section + "\n"
    else:
        new = "# Performance results\n\n" + section + "\n"
    with open(doc, "w") as f:
        f.write(new)
    print(f"wrote {doc} ({n} runs, {steps} steady-state steps) and {len(charts)} chart(s) in {perf}/")


def summary():
    runs = load()
    print(f"\n{'strategy':12} {'scenario':9} {'runs':>4} {'req/s':>9} {'holds/s':>9} {'p50':>8} {'p95':>8} "
          f"{'p99':>8} {'201':>6} {'409':>7} {'other':>6} {'5xx':>5} {'drop':>6} {'oversell':>8} {'viol':>4} "
          f"{'outbox':>7} {'to 0 s':>6}")
    for st in STRATEGIES:
        for scen in SCENARIOS:
            rs = runs.get((st, scen))
            if not rs:
                continue
            f = lambda k: ms(rs, k)[0] or 0
            print(f"{st:12} {scen:9} {len(rs):>4} {f('k6.rps'):>9.0f} {f('k6.holds_per_s'):>9.0f} "
                  f"{f('k6.hold_ms.p50'):>8.1f} {f('k6.hold_ms.p95'):>8.1f} {f('k6.hold_ms.p99'):>8.1f} "
                  f"{f('k6.holds_ok'):>6.0f} {f('k6.holds_conflict'):>7.0f} {f('k6.holds_other'):>6.0f} "
                  f"{total(rs, 'k6.server_errors'):>5.0f} {f('k6.dropped_iterations'):>6.0f} "
                  f"{total(rs, 'oversell'):>8} {sum(len(r['audit']['violations']) for r in rs):>4} "
                  f"{fmt(ms(rs, 'outbox.backlog')[0], 0):>7} {drain_time(rs):>6}")
    steady = load_steady()
    hold = read_json(os.path.join(OUT, "limits", "pgbench_hold.json"))
    if steady:
        print(f"\nsteady state (hold p99 < 100 ms){'' if hold else '; no pgbench hold limit yet'}:")
    for st, lad in steady.items():
        steps = ", ".join(f"{s['rate']} {'met' if s['ok'] else 'missed'} (p99 {s['hold_ms']['p99']:.0f} ms, "
                          f"backlog {s['outbox']['backlog']} -> 0 in {seconds_to_zero(s['outbox'])} s)"
                          for s in lad["steps"])
        print(f"{st:12} sustained {lad['sustained_per_s'] or 0}/s "
              f"({pct(lad['sustained_per_s'], hold and hold['tps'])} of the pgbench hold limit); {steps}")


if __name__ == "__main__":
    if "--summary" in sys.argv:
        summary()
    else:
        generate(sys.argv[sys.argv.index("--doc") + 1] if "--doc" in sys.argv else DOC)
