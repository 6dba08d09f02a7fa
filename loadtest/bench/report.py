#!/usr/bin/env python3
"""Writes the benchmark part of docs/PERF_RESULT.md (and its SVG charts) from
target/bench/**.json. Python 3 standard library only.

    report.py            # regenerate docs/PERF_RESULT.md between the markers
    report.py --summary  # print the summary table to stdout

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
OUT = os.path.join(ROOT, "target", "bench")
DOC = os.path.join(ROOT, "docs", "PERF_RESULT.md")
NOTES = os.path.join(os.path.dirname(__file__), "ANALYSIS.md")
CHART_RPS = os.path.join(ROOT, "docs", "perf", "throughput.svg")
CHART_P95 = os.path.join(ROOT, "docs", "perf", "hold-p95.svg")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
STRATEGIES = ["pessimistic", "optimistic", "redis"]
SCENARIOS = ["A-ref", "A-design", "B-ref", "B-design", "C-ref", "C-design", "H-off", "H-on"]
RUNS = 3
COLORS = {"pessimistic": "#4e79a7", "optimistic": "#f28e2b", "redis": "#e15759"}
TITLES = {
    "A": "A, hot seat: N users book the same single seat at once (exactly 1 may win)",
    "B": "B, distinct seats: N users each book a different seat at once (all must win)",
    "C": "C, mixed: ramp 0 -> N VUs in 10 s, 30 s steady; 70% seat map, 30% bookings (80% on the hottest 20%)",
    "H": "H, headline: 10,000 users arrive in a 5 s spike (2,000/s, open model) for 1,000 seats; book 1-2 seats, then pay",
}
SIZES = {
    "A-ref": "100 VUs, 1 seat", "A-design": "1,000 VUs, 1 seat",
    "B-ref": "50 VUs, 50 seats", "B-design": "1,000 VUs, 1,000 seats",
    "C-ref": "200 VUs, 50 seats", "C-design": "1,000 VUs, 1,000 seats",
    "H-off": "waiting room off (raw strategy)", "H-on": "waiting room on (enter -> admission -> book -> pay)",
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


def scenario_rows(runs, scen):
    rows = []
    for st in STRATEGIES:
        rs = runs.get((st, scen), [])
        if not rs:
            rows.append(f"| {st} | 0 | — | — | — | — | — | — | — | — | — | — | — | — | not run |")
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
            (f"{viol} violations" if viol else "0 violations") +
            (f"; thresholds failed: {', '.join(failed)}" if failed else "") +
            ("" if len(rs) >= RUNS else f"; **{RUNS - len(rs)} run(s) missing**"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    head = ("| strategy | runs | req/s | holds/s | hold p50 ms | hold p95 ms | hold p99 ms | hold max ms | "
            "201 | 409 | other | oversell | 5xx | dropped iter. | audit |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    return head + "\n" + "\n".join(rows)


def queue_rows(runs):
    out = ["| strategy | runs | admitted | gave up (60 s) | saw sold out | wait p50 s | wait p95 s | holds 201 | paid |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for st in STRATEGIES:
        rs = runs.get((st, "H-on"), [])
        if not rs:
            out.append(f"| {st} | 0 | — | — | — | — | — | — | — |")
            continue
        w50 = ms(rs, "k6.queue_wait_p50_ms")
        w95 = ms(rs, "k6.queue_wait_p95_ms")
        out.append("| " + " | ".join([
            st, str(len(rs)), fmt(*ms(rs, "k6.queue_admitted")), fmt(*ms(rs, "k6.queue_gave_up")),
            fmt(*ms(rs, "k6.queue_sold_out")),
            fmt(w50[0] / 1000 if w50[0] is not None else None, (w50[1] or 0) / 1000, 1),
            fmt(w95[0] / 1000 if w95[0] is not None else None, (w95[1] or 0) / 1000, 1),
            fmt(*ms(rs, "k6.holds_ok")), fmt(*ms(rs, "k6.payments_ok")),
        ]) + " |")
    return "\n".join(out)


def limit_section(runs, pg, hc):
    out = []
    if pg:
        out.append(f"- **pgbench seat claim** (one conditional `UPDATE seats ... WHERE status = 'AVAILABLE'` "
                   f"+ the reservation and reservation_seats `INSERT`s, in one statement, autocommit), "
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
    out.append("| strategy | B-design holds/s | ÷ pgbench claims/s | C-design req/s | ÷ HTTP ceiling | "
               "C-design holds/s | ÷ pgbench claims/s |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for st in STRATEGIES:
        b = ms(runs.get((st, "B-design"), []), "k6.holds_per_s")[0]
        c = ms(runs.get((st, "C-design"), []), "k6.rps")[0]
        ch = ms(runs.get((st, "C-design"), []), "k6.holds_per_s")[0]
        ratio = lambda x, y: f"{x / y:.1%}" if x is not None and y else "—"
        out.append(f"| {st} | {fmt(b, 0)} | {ratio(b, pg and pg['tps'])} | {fmt(c, 0)} | "
                   f"{ratio(c, hc and hc['rps'])} | {fmt(ch, 0)} | {ratio(ch, pg and pg['tps'])} |")
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
        "(2 HTTP workers each, DB pool 16 each), PostgreSQL, Redis, the Kafka-compatible broker (tansu) and k6.",
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


def generate():
    runs = load()
    m = read_json(os.path.join(OUT, "machine.json"))
    pg = read_json(os.path.join(OUT, "limits", "pgbench.json"))
    hc = read_json(os.path.join(OUT, "limits", "http.json"))
    charts = []
    if bar_chart(runs, "k6.rps", "Requests per second (mean of runs; higher is better)", "req/s", CHART_RPS):
        charts.append("![throughput](perf/throughput.svg)")
    if bar_chart(runs, "k6.hold_ms.p95", "Booking latency p95, ms (mean of runs; lower is better; H-on left out)",
                 "ms", CHART_P95, skip=("H-on",)):
        charts.append("![hold p95](perf/hold-p95.svg)")
    n = sum(len(v) for v in runs.values())
    viol = sum(len(r["audit"]["violations"]) for v in runs.values() for r in v)
    miss = missing(runs)
    parts = [BEGIN, "<!-- Generated by `just bench-report` (loadtest/bench/report.py) from target/bench/. "
             "Do not edit by hand between these markers. -->", "",
             "## Seat-locking strategies: the benchmark", "",
             "Reproduce: `just bench-all` (or `just bench-pessimistic` / `bench-optimistic` / `bench-redis`, "
             "then `just bench-limits` and `just bench-report`). Scenarios: `loadtest/k6/`; driver and audit: "
             "`loadtest/bench/bench.py`.", "",
             f"**{n} runs, {viol} invariant violations** (every run is audited straight from the tables: no seat "
             "in two active reservations, sold + held <= capacity, seat statuses agree with reservations, "
             "payments agree with CONFIRMED reservations, Redis stock == AVAILABLE seats for the redis strategy).",
             ""]
    if miss:
        parts += ["> **Incomplete.** Not every strategy x scenario has its 3 runs yet; a table cell is the mean "
                  "(± sample standard deviation) of the runs that exist. Missing: " + "; ".join(miss) + ".", ""]
    parts += ["### Machine", "", machine_section(m, runs), "",
              "### How it is measured", "",
              "- Two instances, `127.0.0.1:8081` and `:8082`, started natively by the driver with "
              "`booking serve --strategy <s>`; k6 alternates requests between them (no load balancer in the path); "
              "in H-on each user keeps to one instance and the users alternate (10,000 users with a connection to "
              "each instance would need more open files than the 20,000 a process may have here).",
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
              "the better comparison there. C is the steady-state throughput comparison.",
              ""]
    for letter in "ABCH":
        parts += [f"### {TITLES[letter]}", ""]
        for scen in [s for s in SCENARIOS if s.startswith(letter)]:
            parts += [f"#### {scen}: {SIZES[scen]}", "", scenario_rows(runs, scen), ""]
        if letter == "H":
            parts += ["Seats sold in the database after each run (the audit's RESERVED seats; every hold of "
                      "H is paid at once):", "", sold_rows(runs), ""]
            parts += ["Waiting room (H-on): k6 cannot read SSE, so each waiting user polls `GET /api/queue/token` "
                      "every 2-6 s, for at most 60 s; `wait` is from entering to holding the token. An admitted "
                      "user whose seats are gone reads the seat map and tries free seats, up to 3 attempts in all; "
                      "`saw sold out` is users who found no free seat.", "", queue_rows(runs), ""]
    parts += ["### The limits, and each strategy as a ratio of them", "", limit_section(runs, pg, hc), "",
              "### Chart", ""] + charts + ["", "### Who wins where (computed from the tables)", "",
                                          winners(runs) or "(needs at least two strategies)", ""]
    if os.path.exists(NOTES):
        with open(NOTES) as f:
            parts += [f.read().strip(), ""]
    parts.append(END)
    section = "\n".join(parts)
    old = ""
    if os.path.exists(DOC):
        with open(DOC) as f:
            old = f.read()
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    elif old.strip():
        new = old.rstrip() + "\n\n" + section + "\n"
    else:
        new = "# Performance results\n\n" + section + "\n"
    with open(DOC, "w") as f:
        f.write(new)
    print(f"wrote {os.path.relpath(DOC, ROOT)} ({n} runs) and {len(charts)} chart(s) in docs/perf/")


def summary():
    runs = load()
    print(f"\n{'strategy':12} {'scenario':9} {'runs':>4} {'req/s':>9} {'holds/s':>9} {'p50':>8} {'p95':>8} "
          f"{'p99':>8} {'201':>6} {'409':>7} {'other':>6} {'5xx':>5} {'drop':>6} {'oversell':>8} {'viol':>4}")
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
                  f"{total(rs, 'oversell'):>8} {sum(len(r['audit']['violations']) for r in rs):>4}")


if __name__ == "__main__":
    if "--summary" in sys.argv:
        summary()
    else:
        generate()
