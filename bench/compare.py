#!/usr/bin/env python3
"""Runs seqmodel's benchmarks and ../shared/peers/peers.py in the same session and prints one
table: config, mode, threads, seqmodel ms (generated code), the interpreter's ms, the no_std
code's ms (gen-stateful, weights compiled in), each peer's
ms, the speed-up of seqmodel over the best peer, and seqmodel's % of the machine's peak
(single-core FMA peak x threads, measured by seqmodel-bench).

    python3 bench/compare.py [--threads 1,2] [--configs a,b] [--python PY] [--peers PATH] [--rounds N]

--python is the interpreter that has torch / onnxruntime / keras (peers.py skips any that is
missing). With --rounds N, seqmodel-bench and peers.py run N times in turn (ours, peers, ours,
peers, ...) and each cell of the table is the median of its N medians: on a noisy VM a single
round moves a row by 10-40 % when a neighbour is busy, and alternating spreads that over both
sides. Raw JSON lines (each with its round) are saved to a new file
bench/results/run-<time>.jsonl.
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lines(cmd, **kw):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, **kw).stdout
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="stream-lstm,ae-seed,lm-gru,big-lstm,gen-stateful,conv-lstm,serve-streams")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers", "peers.py"))
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "seqmodel-bench"], cwd=ROOT, check=True)
    raw = []
    for round_ in range(max(a.rounds, 1)):
        ours = lines([os.path.join(ROOT, "target", "release", "seqmodel-bench"), "--json",
                      "--threads", a.threads, "--configs", a.configs], cwd=ROOT)
        peers = lines([a.python, a.peers, "--peer", "all", "--threads", a.threads, "--configs", a.configs])
        raw += [dict(r, round=round_) for r in ours + peers]
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", time.strftime("run-%Y%m%d-%H%M%S.jsonl"))
    with open(path, "x") as f:
        for r in raw:
            f.write(json.dumps(r) + "\n")
    print(f"raw results: {os.path.relpath(path, ROOT)}", file=sys.stderr)
    rows = merged(raw)

    peak = next((r["gflops"] for r in rows if "peak" in r), None)
    table = {}
    for r in rows:
        if "config" in r:
            table.setdefault((r["config"], r["mode"], r["threads"]), {})[r["peer"]] = r
    peer_names = ["torch", "ort", "keras"]
    head = ["config", "mode", "threads", "seqmodel ms", "interp ms", "no_std ms"] + [p + " ms" for p in peer_names] + \
        ["vs best peer", "% of peak"]
    rounds = len({r["round"] for r in raw})
    print(f"single-core peak (FMA chains): {peak} GFLOP/s; {rounds} round(s), each cell the median of its rounds' medians\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    order = a.configs.split(",")
    for key in sorted(table, key=lambda k: (order.index(k[0]), k[1] != "predict", k[2])):
        cell = table[key]
        ms = lambda p: cell[p]["median_ms"] if p in cell else None
        fmt = lambda v: "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")
        ours_ms = ms("seqmodel")
        best = min((ms(p) for p in peer_names if ms(p) is not None), default=None)
        speed = f"{best / ours_ms:.2f}x" if best and ours_ms else "-"
        pct = "-"
        if ours_ms and peak:
            gflop = cell["seqmodel"]["gflop"]
            pct = f"{100 * gflop / (ours_ms / 1e3) / (peak * key[2]):.0f}%"
        print("| " + " | ".join([key[0], key[1], str(key[2]), fmt(ours_ms), fmt(ms("seqmodel-interp")),
                                  fmt(ms("seqmodel-no_std"))]
                                 + [fmt(ms(p)) for p in peer_names] + [speed, pct]) + " |")
    for f in (r for r in rows if "floor" in r):
        cell = table.get((f["floor"], "predict", 1), {})
        times = "".join(f"; {name} {cell[p]['median_ms'] / f['ms']:.2f}x the floor"
                        for p, name in [("seqmodel", "seqmodel"), ("seqmodel-no_std", "no_std")] if p in cell)
        print(f"\n{f['floor']} floor at 1 thread: {f['ms']:.3f} ms ({f['weight_bytes_per_step']} weight bytes per step "
              f"over {f['l2_read_gbs']} GB/s of L2 reads, or the FLOPs over the peak){times}")


def merged(raw):
    """One row per measured thing: the median over rounds of its medians (of the peak and the
    floor, of their readings), the smallest minimum and the largest maximum."""
    groups = {}
    for r in raw:
        if "peak" in r:
            key = ("peak",)
        elif "floor" in r:
            key = ("floor", r["floor"], r["threads"])
        else:
            key = ("case", r["config"], r["mode"], r["threads"], r["peer"])
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        row = {k: v for k, v in rs[0].items() if k != "round"}
        med = lambda field: statistics.median(r[field] for r in rs)
        if key[0] == "peak":
            row["gflops"] = med("gflops")
        elif key[0] == "floor":
            row["ms"], row["l2_read_gbs"] = med("ms"), med("l2_read_gbs")
        elif all("median_ms" in r for r in rs):
            row["median_ms"] = med("median_ms")
            row["min_ms"] = min(r["min_ms"] for r in rs if "min_ms" in r) if any("min_ms" in r for r in rs) else None
            row["max_ms"] = max(r["max_ms"] for r in rs if "max_ms" in r) if any("max_ms" in r for r in rs) else None
        out.append(row)
    return out


if __name__ == "__main__":
    main()
