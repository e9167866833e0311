"""``azl report compare|summary|trend|html|merge|diff``: tools over the per-image reports.

Exit codes: 0 fine, 1 regressions found (compare), 2 bad input (one-line message); ``diff``:
4 on bad input (a path that is neither a run's reports with image records nor a recorded
image), as for any file the user named.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    report: argparse.ArgumentParser = sub.add_parser(
        "report", help="compare, summarize, chart, render and merge per-image JUnit reports"
    )
    tools = report.add_subparsers(dest="report_command", required=True, metavar="TOOL")

    p = tools.add_parser(
        "compare", help="what got worse between two runs (exit 1 on regressions)",
        description="Compare runs per image: new failures, fixed, still failing, new and "
        "removed tests, and metrics: a regression is a change in the metric's bad direction "
        "beyond its tolerance that a rank test over the repetitions of both runs finds "
        "significant (p < 0.01). Several base runs (oldest first) form a history: a metric "
        "regresses when it falls outside what they show. Exit 1 on new failures or metric "
        "regressions, 0 otherwise, 2 on bad input.",
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                   help="BASE [BASE ...] CURRENT: directories of per-image reports or files; "
                   "several bases are a history, oldest first")
    p.add_argument("--config", type=Path, metavar="YAML",
                   help="tolerances: {tolerances: {throughput_gbps: 0.05, default: 0.10}, "
                   "alpha: 0.01}")
    p.add_argument("--tolerance", type=float, metavar="FRACTION",
                   help="default relative tolerance (overrides the config's default; 0.1 = 10%%)")
    p.add_argument("--alpha", type=float, metavar="P",
                   help="significance level of the rank test (default 0.01; the config's "
                   "alpha)")
    p.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    p.add_argument("--max-rows", type=int, default=50, help="rows per Markdown table")
    p.set_defaults(func=_compare)

    p = tools.add_parser("summary", help="a Markdown table per image of one run")
    p.add_argument("runs", type=Path, nargs="+", metavar="DIR",
                   help="directory of per-image reports (or report files)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.add_argument("--max-rows", type=int, default=30, help="rows per Markdown table")
    p.set_defaults(func=_summary)

    p = tools.add_parser(
        "trend", help="PNG chart of metrics across runs",
        description="Chart metrics across runs: give the run directories in order, or one "
        "parent directory whose subdirectories (sorted by name) are the runs.",
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="DIR")
    p.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help="only this metric (repeatable)")
    p.add_argument("--out", type=Path, default=Path("trend.png"), metavar="FILE.png",
                   help="output PNG (default: trend.png)")
    p.set_defaults(func=_trend)

    p = tools.add_parser(
        "html", help="one self-contained HTML page of a run",
        description="Render the per-image reports of a run into one self-contained HTML page "
        "(DIR/index.html unless --out). With --history, earlier runs (directories in time "
        "order, or one parent whose subdirectories are the runs) give each metric a trend.",
    )
    p.add_argument("run", type=Path, metavar="DIR", help="the run's report directory (or file)")
    p.add_argument("--history", type=Path, nargs="+", default=[], metavar="DIR",
                   help="earlier runs, oldest first")
    p.add_argument("--out", type=Path, metavar="FILE.html",
                   help="output file (default: DIR/index.html)")
    p.set_defaults(func=_html)

    p = tools.add_parser(
        "merge", help="merge the per-image reports of CI shards",
        description="Merge the per-image reports of shards (--azl-shard i/n) into one report "
        "per image in OUT_DIR. A test in two shards with different outcomes keeps the worst "
        "one and is marked azl.merge.conflict (an error with --strict). Whole-target checks "
        "(azl.rejudge, e.g. one image per target) are judged again over every shard's hosts.",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("shards", type=Path, nargs="+", metavar="SHARD_DIR")
    p.add_argument("--strict", action="store_true",
                   help="fail when a test has different outcomes in two shards")
    p.set_defaults(func=_merge)

    p = tools.add_parser(
        "diff", help="what changed between two images: packages, kernel, os-release",
        description="What changed between two images: packages added, removed, upgraded and "
        "downgraded (rpm's version order, epoch first), the running kernel, os-release and "
        "the node image version. Each side is a run's report directory (its *.image.json), "
        "one image record or JUnit file of a run, or a recorded image (an AgentBaker "
        "release-notes file). Exit 0 (also when they differ), 4 on bad input.",
    )
    p.add_argument("old", type=Path, metavar="OLD")
    p.add_argument("new", type=Path, metavar="NEW")
    p.add_argument("--image", action="append", default=[], metavar="KEY",
                   help="the image to take from a run with several: once for both sides, "
                   "twice for OLD's then NEW's")
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="the host to take where an image's hosts differ: once for both "
                   "sides, twice for OLD's then NEW's")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="Markdown instead of text")
    form.add_argument("--json", action="store_true", help="JSON instead of text")
    p.set_defaults(func=_diff)


def _compare(args: argparse.Namespace) -> int:
    from ..errors import ReportError
    from .compare import compare_runs, load_tolerances
    from .compare_render import render_markdown

    if len(args.runs) < 2:
        raise ReportError("compare: give a base run and the current run (BASE... CURRENT)")
    tolerances = load_tolerances(args.config, args.tolerance, args.alpha)
    result = compare_runs(args.runs[:-1], args.runs[-1], tolerances)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        sys.stdout.write(render_markdown(result, max_rows=args.max_rows))
    return 1 if result.regressed else 0


def _summary(args: argparse.Namespace) -> int:
    from ..errors import ReportError
    from .summary import summarize_paths

    text = summarize_paths(args.runs, max_rows=args.max_rows)
    if args.out:
        try:
            args.out.write_text(text)
        except OSError as exc:
            raise ReportError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0


def _trend(args: argparse.Namespace) -> int:
    from .trend import collect_series, load_runs, render_png

    runs = load_runs(args.runs)
    series = collect_series(runs, args.metric)
    width, height = render_png(runs, series, args.out)
    print(f"{args.out}: {len(series)} series over {len(runs)} runs ({width}x{height} px)")
    return 0


def _html(args: argparse.Namespace) -> int:
    from .html import write_html
    from .run_dir import HTML_NAME

    out = args.out or ((args.run if args.run.is_dir() else args.run.parent) / HTML_NAME)
    print(write_html(out, [args.run], args.history))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .merge import merge_shards

    result = merge_shards(args.out_dir, args.shards, strict=args.strict)
    for warning in result.warnings:
        print(f"azl: warning: {warning}", file=sys.stderr)
    for path in result.written:
        print(path)
    print(f"merged {len(args.shards)} shard(s): {len(result.written)} image report(s), "
          f"{result.tests} test(s)", file=sys.stderr)
    return 0


def _diff(args: argparse.Namespace) -> int:
    from ..errors import ReportError

    try:
        text = _diff_text(args)
    except ReportError as exc:  # a file the user named: exit 4, as for a bad targets file
        print(f"azl: error: {exc}", file=sys.stderr)
        return 4
    sys.stdout.write(text)
    return 0


def _diff_text(args: argparse.Namespace) -> str:
    from ..errors import ReportError
    from .image_diff import diff_images, render_markdown, render_text, to_dict
    from .image_source import load_side

    sides = []
    for option, values in (("--image", args.image), ("--host", args.host)):
        if len(values) > 2:
            raise ReportError(f"{option}: give it once (both sides) or twice (OLD, NEW), "
                              f"not {len(values)} times")
        sides.append((values * 2)[:2] if values else [None, None])
    (old_image, new_image), (old_host, new_host) = sides
    diff = diff_images(load_side(args.old, old_image, old_host),
                       load_side(args.new, new_image, new_host))
    if args.json:
        return json.dumps(to_dict(diff), indent=2) + "\n"
    if args.markdown:
        return "\n".join(render_markdown(diff, "azl report diff", level=2)) + "\n"
    return render_text(diff)
