"""recipegen's benchmark: cold and warm installs of fixed inputs, and the ratios that matter.

Run it from a checkout with ``bash benchmarks/run.sh`` (which makes the venv it needs), or
with a python that has recipegen installed: ``python benchmarks/run.py``. For each input
set (``httpx==0.28.1``; ``rich==13.9.4``; the 20 packages of ``requirements-20.txt``, each
with its closure pinned by ``constraints-*.txt``) it measures, in one run:

* **pip**: ``pip install --no-binary :all: --no-cache-dir -c CONSTRAINTS SPECS`` into a
  fresh venv with an empty pip cache (every distribution built from its sdist, build
  backends included);
* **cold**: ``recipegen install`` into a new env with ``--jobs 2`` and with ``--jobs 1``,
  each with a new work root (no recipe, plan, PyPI, sdist or grayskull cache), an empty pip
  cache and an empty rattler package cache: everything is resolved, generated, built from
  the sdists and installed. Time per phase comes from recipegen's ``--json`` events;
* **warm**: the same ``recipegen install`` into new envs, with the work root of the cold
  ``--jobs 2`` run (it must generate and build nothing: checked from its events), against
  **bare**: a py-rattler solve of the same conda specs with the same channels (the local
  channel and the seed channel) and an install into a new env (``bare_rattler.py``, run as
  its own process, same interpreter, same package cache). Both are timed as whole commands,
  start-up included; runs alternate, and medians are compared.

The conda channel is a seed channel made by ``recipegen seed`` (no conda channel is
reachable here), once, before anything is timed. Results go to ``benchmarks/RESULTS.md``.
Tests never run this (times are not asserted anywhere).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: The input sets: name → (specs, constraints file).
SETS = {
    "httpx": (["httpx==0.28.1"], HERE / "constraints-httpx.txt"),
    "rich": (["rich==13.9.4"], HERE / "constraints-rich.txt"),
    "req20": ([line.strip() for line in (HERE / "requirements-20.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")], HERE / "constraints-req20.txt"),
}
#: recipegen's phase events → the phases reported.
PHASES = {"channels": "map+channels", "resolve": "resolve", "generate": "generate",
          "build": "build", "solve": "install", "install": "install", "seed": "seed"}
PHASE_ORDER = ("resolve", "map+channels", "generate", "build", "install", "start-up+exit")


@dataclass
class Run:
    wall: float
    code: int
    stdout: str
    stderr: str
    events: list[dict] = field(default_factory=list)

    def result(self) -> dict:
        return next((e for e in reversed(self.events) if e.get("event") == "result"), {})

    def count(self, status: str, **extra) -> int:
        return sum(1 for e in self.events if e.get("event") == "package"
                   and e.get("status") == status
                   and all(e.get(k) == v for k, v in extra.items()))

    def plan_cache(self) -> str:
        """``hit``, or ``miss: <why>`` from the plan cache's event."""
        event = next((e for e in self.events if e.get("event") == "cache"
                      and e.get("cache") == "plan"), None)
        if event is None:
            return "none"
        return "hit" if event.get("hit") else f"miss: {event.get('detail')}"

    def phases(self) -> dict[str, float]:
        """Seconds per phase: from each phase event to the next, the last to the result."""
        marks = [(e["elapsed"], PHASES.get(e["phase"], e["phase"])) for e in self.events
                 if e.get("event") == "phase"]
        end = self.result().get("elapsed", marks[-1][0] if marks else 0.0)
        out = dict.fromkeys(PHASE_ORDER, 0.0)
        for (start, name), (stop, _next) in zip(marks, [*marks[1:], (end, "")], strict=True):
            out[name] = out.get(name, 0.0) + (stop - start)
        out["resolve"] += marks[0][0] if marks else 0.0  # the time before the first event
        out["start-up+exit"] = max(0.0, self.wall - end)
        return out


def run(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None,
        timeout: float = 3600) -> Run:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - start
    events = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return Run(wall, proc.returncode, proc.stdout, proc.stderr, events)


def must(r: Run, what: str) -> Run:
    if r.code != 0:
        sys.exit(f"benchmark: {what} failed (exit {r.code}):\n{r.stderr[-3000:]}")
    return r


# -- the machine --------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                         text=True).stdout.split()[1:2]
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "recipegen": _version("recipegen"),
        "pip": pip[0] if pip else "?",
        "py-rattler": _version("py-rattler"),
        "py-rattler-build": _version("py-rattler-build"),
        "grayskull": _version("grayskull"),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# -- the measurements -----------------------------------------------------------------------


def recipegen(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "recipegen", *map(str, args)]


def cold_env(work: Path, label: str) -> dict:
    """An environment whose pip and rattler caches are new and empty."""
    env = dict(os.environ)
    env.pop("CONDA_PREFIX", None)
    env["PIP_CACHE_DIR"] = str(work / f"pip-cache-{label}")
    env["RATTLER_CACHE_DIR"] = str(work / f"rattler-cache-{label}")
    return env


def pip_baseline(work: Path, name: str, specs: list[str], constraints: Path) -> float:
    """``--no-cache-dir`` does not reach the pip that fills each isolated build env: it would
    take the build backends as wheels built by earlier runs. An empty cache of its own makes
    it build them from their sdists too (once per run, as recipegen does)."""
    venv = work / f"pip-venv-{name}"
    must(run([sys.executable, "-m", "venv", str(venv)]), "making the pip baseline's venv")
    env = {**os.environ, "PIP_CACHE_DIR": str(work / f"pip-cache-baseline-{name}")}
    r = must(run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--no-binary", ":all:", "--no-cache-dir", "--disable-pip-version-check",
                  "-c", str(constraints), *specs], env=env), f"pip install of {name}")
    shutil.rmtree(venv, ignore_errors=True)
    return r.wall


def cold(work: Path, seed: Path, name: str, specs: list[str], constraints: Path,
         jobs: int) -> tuple[Run, Path, dict]:
    label = f"{name}-jobs{jobs}"
    root = work / f"work-{label}"
    env = cold_env(work, label)
    r = must(run(recipegen("install", *specs, "-p", work / f"env-{label}", "-c", seed,
                           "--constraints", constraints, "--work-root", root, "--jobs",
                           str(jobs), "-y", "--json"), env=env, cwd=work),
             f"cold install of {name} (--jobs {jobs})")
    (work / f"events-{label}.jsonl").write_text(r.stdout)  # kept with --keep
    return r, root, env


def warm_and_bare(work: Path, seed: Path, name: str, specs: list[str], constraints: Path,
                  root: Path, env: dict, rounds: int) -> dict:
    """Alternate warm recipegen installs and bare rattler installs into new prefixes."""
    warm: list[float] = []
    bare: list[float] = []
    generated = built = 0
    plan_cache: list[str] = []
    conda_specs: list[str] = []
    same = None
    for i in range(rounds):
        prefix = work / f"env-{name}-warm-{i}"
        r = must(run(recipegen("install", *specs, "-p", prefix, "-c", seed, "--constraints",
                               constraints, "--work-root", root, "-y", "--json"),
                     env=env, cwd=work), f"warm install of {name}")
        warm.append(r.wall)
        generated += r.count("generating")
        built += r.count("building")
        plan_cache.append(r.plan_cache())
        result = r.result()
        conda_specs = result.get("requested", [])
        installed = sorted(f"{c['name']} {c['new']}" for c in result.get("changes", [])
                           if c.get("new"))
        b = must(run([sys.executable, str(HERE / "bare_rattler.py"),
                      str(work / f"env-{name}-bare-{i}"),
                      f"{(root / 'channel').as_uri()},{seed.as_uri()}", *conda_specs],
                     env=env, cwd=work), f"bare rattler install of {name}")
        bare.append(b.wall)
        same = installed == json.loads(b.stdout.strip().splitlines()[-1])
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(work / f"env-{name}-bare-{i}", ignore_errors=True)
    return {"warm": warm, "bare": bare, "generated": generated, "built": built,
            "plan_cache": plan_cache,
            "conda_specs": conda_specs, "same_packages": same}


# -- reporting ------------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _inputs(name: str) -> str:
    return "benchmarks/requirements-20.txt" if name == "req20" else " ".join(SETS[name][0])


def report(mach: dict, results: dict, seed_seconds: float, args) -> str:
    lines = ["# recipegen benchmark results", "",
             f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with "
             "`bash benchmarks/run.sh`" + (f" {' '.join(args.argv)}" if args.argv else "")
             + ".", "", "## Machine", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in mach.items()]
    lines += ["", "The machine is shared with other work: the load average above is at the "
              "start of the run; times vary by tens of percent from run to run, ratios "
              "measured in the same run less.", ""]
    lines += ["## Figures", "",
              "| | " + " | ".join(results) + " |",
              "|---|" + "---|" * len(results)]

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(r) for r in results.values()) + " |")

    row("packages built (cold)", lambda r: str(r["cold2"].count("built")))
    row("recipes generated (cold)", lambda r: str(r["cold2"].count("generated")))
    row("**cold**, `--jobs 2`", lambda r: fmt(r["cold2"].wall))
    for phase in PHASE_ORDER:
        row(f"&nbsp;&nbsp;{phase}", lambda r, p=phase: fmt(r["cold2"].phases()[p]))
    row("`pip install --no-binary :all:`", lambda r: fmt(r["pip"]))
    row("**cold / pip**", lambda r: f"**{r['cold2'].wall / r['pip']:.2f}×**")
    row("cold, `--jobs 1`", lambda r: fmt(r["cold1"].wall) if r.get("cold1") else "–")
    row("**speed-up of `--jobs 2`**",
        lambda r: f"**{r['cold1'].wall / r['cold2'].wall:.2f}×**" if r.get("cold1") else "–")
    row("**warm** (median)", lambda r: fmt(statistics.median(r["warm"]["warm"])))
    row("bare rattler (median)", lambda r: fmt(statistics.median(r["warm"]["bare"])))
    row("**warm / bare rattler**", lambda r: "**{:.2f}×**".format(
        statistics.median(r["warm"]["warm"]) / statistics.median(r["warm"]["bare"])))
    row("warm runs: generated / built", lambda r: f"{r['warm']['generated']} / "
        f"{r['warm']['built']}")
    row("warm runs: saved plan reused", lambda r: "{} of {}".format(
        r["warm"]["plan_cache"].count("hit"), len(r["warm"]["plan_cache"])))
    row("warm and bare envs: same packages",
        lambda r: "yes" if r["warm"]["same_packages"] else "NO")
    lines += ["", "Warm and bare times, each run (s):", ""]
    for name, r in results.items():
        lines.append(f"* {name}: warm " + ", ".join(f"{x:.3f}" for x in r["warm"]["warm"])
                     + "; bare " + ", ".join(f"{x:.3f}" for x in r["warm"]["bare"]))
        for i, state in enumerate(r["warm"]["plan_cache"]):
            if state != "hit":
                lines.append(f"  * warm run {i + 1}: plan cache {state}")
    lines += ["", "## What was measured", "",
              f"* Conda channel: a seed channel made by `recipegen seed` "
              f"({seed_seconds:.1f} s, once, not counted).",
              "* Inputs: " + "; ".join(f"{n}: `{_inputs(n)}` with "
                                       f"`{SETS[n][1].relative_to(REPO)}`" for n in results)
              + ".",
              "* pip: a fresh venv; `pip install --no-binary :all: --no-cache-dir "
              "-c CONSTRAINTS SPECS` with an empty `PIP_CACHE_DIR` (every distribution and "
              "build backend built from its sdist: `--no-cache-dir` alone does not reach the "
              "pip that fills the isolated build envs, which would take backends built by "
              "earlier runs from the cache; pip's build envs resolve their backends "
              "themselves).",
              "* cold: a new work root and env, an empty pip cache (`PIP_CACHE_DIR`) and an "
              "empty rattler package cache (`RATTLER_CACHE_DIR`): the rattler package cache "
              "is **cold**. Phases from recipegen's `--json` phase events (each until the "
              "next; `install` is the solve, link and conda-meta work, lock file included; "
              "start-up+exit is the rest of the wall time).",
              "* warm: the same command into a new env with the cold `--jobs 2` run's work "
              "root and rattler package cache (both **warm**); its events show nothing "
              "generated or built. bare rattler: `benchmarks/bare_rattler.py`, a py-rattler "
              "`solve` of the conda specs recipegen recorded (`"
              + "`, `".join(next(iter(results.values()))["warm"]["conda_specs"]) + "` for "
              + next(iter(results)) + ") against the same two channels, with the machine's "
              "virtual packages, and `install` into a new env, same package cache, as its "
              "own process. recipegen additionally writes what conda expects after a change "
              "(record fields, `.pyc` files of noarch packages, history, the "
              "EXTERNALLY-MANAGED marker) and the lock file.",
              "* recipegen's own modules were byte-compiled first (`compileall`), as pip "
              "does for an installed package; this machine sets "
              "`PYTHONDONTWRITEBYTECODE=1`, so an editable checkout is otherwise compiled "
              "on every start."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="httpx,rich,req20",
                        help="comma-separated input sets (default: all)")
    parser.add_argument("--warm-runs", type=int, default=15, help="warm and bare runs each")
    parser.add_argument("--no-jobs1", action="store_true",
                        help="skip the --jobs 1 cold runs (no speed-up figure)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"),
                        help="where the results go (default: benchmarks/RESULTS.md)")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    work = Path(args.keep or tempfile.mkdtemp(prefix="recipegen-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    mach = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in mach.items()), flush=True)
    print(f"work dir: {work}", flush=True)

    seed = work / "seed"
    s = must(run(recipegen("seed", "--channel", seed), cwd=work),
             "making the seed channel")
    print(f"seed channel: {fmt(s.wall)} (not counted)", flush=True)

    results: dict[str, dict] = {}
    for name in names:
        specs, constraints = SETS[name]
        print(f"\n== {name}: {len(specs)} requirement(s), closure pinned by "
              f"{constraints.name}", flush=True)
        res: dict = {}
        res["pip"] = pip_baseline(work, name, specs, constraints)
        print(f"pip install --no-binary :all: (fresh venv): {fmt(res['pip'])}", flush=True)
        res["cold2"], root, env = cold(work, seed, name, specs, constraints, jobs=2)
        phases = res["cold2"].phases()
        print(f"cold --jobs 2: {fmt(res['cold2'].wall)} ({res['cold2'].count('built')} built, "
              f"{res['cold2'].count('generated')} generated) = {res['cold2'].wall / res['pip']:.2f}"
              f"x pip; " + ", ".join(f"{p} {fmt(phases[p])}" for p in PHASE_ORDER), flush=True)
        if not args.no_jobs1:
            res["cold1"], _root1, _env1 = cold(work, seed, name, specs, constraints, jobs=1)
            print(f"cold --jobs 1: {fmt(res['cold1'].wall)}; --jobs 2 is "
                  f"{res['cold1'].wall / res['cold2'].wall:.2f}x faster", flush=True)
            shutil.rmtree(_root1, ignore_errors=True)
        res["warm"] = warm_and_bare(work, seed, name, specs, constraints, root, env,
                                    args.warm_runs)
        w = statistics.median(res["warm"]["warm"])
        b = statistics.median(res["warm"]["bare"])
        print(f"warm (median of {args.warm_runs}): {w:.3f} s, generated "
              f"{res['warm']['generated']}, built {res['warm']['built']}; bare rattler "
              f"{b:.3f} s; warm/bare {w / b:.2f}x; same packages: "
              f"{res['warm']['same_packages']}", flush=True)
        results[name] = res

    mach["load"] += " (start); " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (end)"
    text = report(mach, results, s.wall, args)
    Path(args.output).write_text(text)
    print(f"\n{text}\nwritten to {args.output}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
