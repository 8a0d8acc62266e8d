"""Renders bench/results/resume-time.{md,json} from bench/resume_time.sh's rows and the runs'
progress logs: the timing table, then the lost work counted from the logs."""
import json
import sys

rows = json.load(open(sys.argv[1]))

def tasks(path):
    """Each task of a progress log (the last that started under its name): total, done, skipped,
    finished, and its seconds from start to finish."""
    out = {}
    for line in open(path):
        e = json.loads(line)
        if e["event"] == "start":
            t = out[e["task"]] = dict(total=e["total"], done=0, skipped=0, finished=False, t0=e["t"])
        elif e["event"] == "update":
            t["done"] = e["done"]
        elif e["event"] == "skip":
            t["skipped"] += e["units"]
        elif e["event"] == "finish":
            t["done"], t["finished"], t["seconds"] = t["total"], True, e["t"] - t["t0"]
    return out

def lost_work(r):
    """The kill's lost work per task: what the killed run (started from nothing) had done, less
    what the re-run found done (a task the re-run does not start was done); priced at the whole
    run's seconds per unit. Also the interval of the task the kill landed in."""
    whole, killed, rerun = (tasks(p) for p in r["logs"])
    shares = [kv.rsplit("=", 1) for kv in r["intervals"].split(",")]
    share = lambda name: next((float(v) for k, v in shares if name.startswith(k)), 1.0)
    lost, lost_s, bound_s, at = {}, 0.0, 0.0, "-"
    for name, w in whole.items():
        k, re = killed.get(name), rerun.get(name)
        end = k["done"] - k["skipped"] if k else 0
        before = w["total"] - re["total"] + re["skipped"] if re else w["total"]
        lost[name] = end - before
        lost_s += lost[name] * w["seconds"] / max(1, w["total"])
        if k and not k["finished"]:
            at = name
            bound_s = share(name) * w["seconds"]
    return lost, lost_s, bound_s, at

md = ["# Re-run time after SIGKILL", "",
      "Command: `bench/resume_time.sh` (Fashion-MNIST, 2 threads). Each stage runs whole "
      f"{len(rows[0]['whole_runs'])} times; T is the",
      "median wall time. Then the stage is killed at 0.23 / 0.51 / 0.78 of T and re-run to completion.",
      "Bound: (1 - f) T + one checkpoint interval (as a share of the stage's own seconds) + start-up",
      "(T minus the stage's own seconds) + set-up (setup_seconds: inputs and model, before the first",
      "unit of work), both of the median whole run. Output identical: the re-run's output against",
      "the median whole run's, byte for byte; the whole runs are also compared with each other.", "",
      "| stage | whole runs s | T s | set-up s (whole / re-run) | kill at | re-run s | bound s | within | output identical |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in rows:
    startup = r["whole"] - r["work"]
    r["bound"] = (1 - r["kill_fraction"]) * r["whole"] + r["interval"] * r["work"] + startup + r["setup"]
    r["within"] = r["rerun"] <= r["bound"]
    runs = " / ".join(f"{x:.1f}" for x in r["whole_runs"]) + ("" if r["wholes_identical"] else " (differ!)")
    md.append(f"| {r['stage']} | {runs} | {r['whole']:.1f} | {r['setup']:.1f} / {r['rerun_setup']:.1f} | "
              f"{r['kill_fraction']:.2f} | {r['rerun']:.1f} | {r['bound']:.1f} | "
              f"{'yes' if r['within'] else 'NO'} | {'yes' if r['identical'] else 'NO'} |")
md += ["", "## Lost work, counted", "",
       "From the progress logs (`--progress-log`) of the killed run and its re-run: per task, the units",
       "the killed run had done less those the re-run found done (the unit in progress at the kill",
       "is not counted). Priced at the median whole run's seconds per unit of that task; the bound",
       "is one checkpoint interval of the task the kill landed in (a task that saves no state: all",
       "of it).", "",
       "| stage | kill at | killed in task | lost units, by task | lost s | interval s | within |",
       "| --- | --- | --- | --- | --- | --- | --- |"]
for r in rows:
    lost, r["lost_seconds"], r["interval_seconds"], r["killed_in"] = lost_work(r)
    r["lost_units"] = lost
    r["lost_within"] = r["lost_seconds"] <= r["interval_seconds"] + 1e-9
    units = ", ".join(f"{k} {v}" for k, v in lost.items())
    md.append(f"| {r['stage']} | {r['kill_fraction']:.2f} | {r['killed_in']} | {units} | "
              f"{r['lost_seconds']:.2f} | {r['interval_seconds']:.2f} | "
              f"{'yes' if r['lost_within'] else 'NO'} |")
md += open("bench/resume_time_findings.md").read().rstrip("\n").split("\n")
json.dump(rows, open("bench/results/resume-time.json", "w"), indent=1)
open("bench/results/resume-time.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))