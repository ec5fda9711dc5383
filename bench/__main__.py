"""`python -m bench [--quick] [--only CASE] [--runs N]`: run the benchmarks, print a table and
write docs/BENCHMARKS.md (which also says how each case measures)."""

import argparse
import importlib
import signal
import sys
import time
from pathlib import Path

from .environment import ROOT, Environment, machine
from .figures import Figure

CASES = ("accept", "pipeline", "memory", "progress", "rate_limit")
REPORT = ROOT / "docs" / "BENCHMARKS.md"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller work, one run per case")
    parser.add_argument("--only", choices=CASES, action="append", help="run only this case")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; 1 with --quick)")
    parser.add_argument("--no-report", action="store_true", help="don't write docs/BENCHMARKS.md")
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs = args.runs or (1 if args.quick else 3)
    cases = args.only or list(CASES)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    figures: list[Figure] = []
    failures: list[str] = []
    env = Environment()
    try:
        described = machine()
        for case in cases:
            print(f"== {case} ...", flush=True)
            case_started = time.monotonic()
            module = importlib.import_module(f"bench.{case}")
            try:
                new = module.run(env, quick=args.quick, runs=runs)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # one broken case must not hide the others' figures
                failures.append(f"{case}: {type(err).__name__}: {err}")
                print(f"   FAILED: {err}", flush=True)
            else:
                figures += new
                print(table(new), flush=True)
            finally:
                env.park_jobs()
                env.reset_redis()
            print(f"   ({time.monotonic() - case_started:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopping every process", file=sys.stderr)
        return 130
    finally:
        env.close()
    elapsed = time.monotonic() - started
    print("\n" + table(figures))
    for failure in failures:
        print(f"FAILED {failure}")
    if not args.no_report:
        write_report(REPORT, figures, described, args, runs, elapsed, failures)
        print(f"\nwrote {REPORT.relative_to(ROOT)} ({elapsed:.0f} s)")
    return 1 if failures else 0


def table(figures: list[Figure]) -> str:
    rows = [("case", "figure", "value", "target", "")]
    rows += [(f.case, f.name, f.shown(), f.target, f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def write_report(
    path: Path,
    figures: list[Figure],
    described: dict[str, str],
    args: argparse.Namespace,
    runs: int,
    elapsed: float,
    failures: list[str],
) -> None:
    from . import report

    path.parent.mkdir(exist_ok=True)
    path.write_text(report.render(figures, described, args, runs, elapsed, failures))


if __name__ == "__main__":
    sys.exit(main())
