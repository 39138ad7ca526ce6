"""``scalper sweep``: a grid of settings, each combination a backtest, ranked by net PnL.

The grid is the cartesian product of every ``--grid section.key=v1,v2,...`` (keys in the
order given, values in the order written), on top of the common ``--set`` values. Each
combination is one ``research.backtest.run_backtest`` of all the files, run as a job:

* locally (default) in a process pool of ``--workers`` processes (default: the cores),
  started with ``spawn``: a forked child would inherit the parent's trio and logging
  state, which do not survive a fork;
* on a Dask distributed cluster with ``--dask tcp://host:8786`` (``pip install
  .[cluster]``), for grids that outgrow one machine. The files must be readable at the
  same path on every worker (a shared volume), as the jobs carry paths, not data.

A job is a pure function of (files, settings): results never depend on the executor or
the number of workers; rows are ranked by net PnL, ties by the grid order, so the
output is the same whatever ran it. Each row carries the run's digest to prove it.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .backtest import BacktestError, load_spec, run_backtest

__all__ = [
    "Combination",
    "SweepFailed",
    "main_sweep",
    "parse_grid",
    "rank_rows",
    "run_combination",
    "sweep",
]


@attrs.frozen
class Combination:
    """One point of the grid: its index in grid order and its ``key -> value`` settings."""

    index: int
    values: tuple[tuple[str, str], ...]


def parse_grid(items: Sequence[str]) -> list[Combination]:
    """``--grid`` items -> every combination, in grid order (``BacktestError`` when bad)."""
    axes: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        options = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or "." not in key or not options:
            raise BacktestError(f"--grid: expected section.key=v1,v2,..., got {item!r}")
        if any(key == k for k, _ in axes):
            raise BacktestError(f"--grid: {key} given twice")
        axes.append((key, options))
    combos = itertools.product(*[[(k, v) for v in vs] for k, vs in axes])
    return [Combination(index=i, values=tuple(c)) for i, c in enumerate(combos)]


def run_combination(
    paths: Sequence[str],
    sets: Sequence[str],
    combination: Combination,
    config: str | None,
    latency_ms: int | None,
) -> dict[str, Any]:
    """One job: the backtest of ``paths`` with the combination's settings, as a row.

    Top-level and made of plain values so a process pool or a Dask worker can run it.
    """
    extra = [f"{k}={v}" for k, v in combination.values]
    spec = load_spec(paths, [*sets, *extra], config=config, latency_ms=latency_ms)
    result = run_backtest(spec)
    data = result.to_json()
    return {
        "index": combination.index,
        "params": dict(combination.values),
        "net_pnl": data["net_pnl"],
        "gross_pnl": data["gross_pnl"],
        "fees": data["fees"],
        "fills": result.fills,
        "round_trips": result.round_trips,
        "win_rate": data["win_rate"],
        "max_drawdown": data["max_drawdown"],
        "digest": result.digest,
        "frames": result.frames,
        "seconds": data["seconds"],
    }


def rank_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best net PnL first; equal PnL in grid order. Adds ``rank`` (1 = best)."""
    ordered = sorted(rows, key=lambda r: (-r["net_pnl"], r["index"]))
    return [{"rank": i + 1, **row} for i, row in enumerate(ordered)]


class SweepFailed(Exception):
    """The sweep could not run (a cluster that cannot be reached): one line, exit 1."""


Executor = Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]]


def _local(workers: int) -> Executor:
    def run(jobs: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        if workers == 1:
            return [run_combination(*job) for job in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(run_combination, *zip(*jobs, strict=True)))

    return run


def _dask(address: str) -> Executor:
    def run(jobs: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        try:
            # imported by name: dask is optional (the ``cluster`` extra) and untyped
            distributed: Any = importlib.import_module("distributed")
        except ModuleNotFoundError:
            raise BacktestError(
                "--dask: dask is not installed (pip install '.[cluster]')"
            ) from None
        try:
            client = distributed.Client(address, timeout="10s")
        except OSError as exc:  # unreachable scheduler: a runtime failure, not usage
            raise SweepFailed(f"--dask: cannot reach {address}: {exc}") from None
        with client:
            futures = client.map(run_combination, *zip(*jobs, strict=True), pure=False)
            results: list[dict[str, Any]] = client.gather(futures)
            return results

    return run


def sweep(
    paths: Sequence[str],
    grid: Sequence[str],
    *,
    sets: Sequence[str] = (),
    config: str | None = None,
    latency_ms: int | None = None,
    workers: int | None = None,
    dask: str | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run every combination of ``grid`` and return the ranked rows.

    Every combination's settings are checked here first, so a bad value is one
    ``BacktestError`` before any job starts.
    """
    combinations = parse_grid(grid)
    for combination in combinations:
        extra = [f"{k}={v}" for k, v in combination.values]
        load_spec(paths, [*sets, *extra], config=config, latency_ms=latency_ms)
    if executor is None:
        if dask:
            executor = _dask(dask)
        else:
            count = workers if workers is not None else (os.cpu_count() or 1)
            executor = _local(max(1, min(count, len(combinations))))
    jobs = [(tuple(paths), tuple(sets), c, config, latency_ms) for c in combinations]
    return rank_rows(executor(jobs))


def render_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The text table, best first."""
    keys = list(rows[0]["params"]) if rows else []
    head = "  ".join(f"{k:>22}" for k in keys)
    lines = [
        f"{'rank':>4}  {head}  {'net':>10} {'gross':>10} {'fees':>9} {'fills':>5} "
        f"{'trips':>5} {'win':>6} {'drawdown':>9}  digest"
    ]
    for row in rows:
        params = "  ".join(f"{row['params'][k]:>22}" for k in keys)
        lines.append(
            f"{row['rank']:>4}  {params}  {row['net_pnl']:>10.4f} {row['gross_pnl']:>10.4f} "
            f"{row['fees']:>9.4f} {row['fills']:>5} {row['round_trips']:>5} "
            f"{row['win_rate']:>6.1%} {row['max_drawdown']:>9.4f}  {row['digest']}"
        )
    return "\n".join(lines) + "\n"


def main_sweep(args: argparse.Namespace) -> int:
    """Entry point of ``scalper sweep``; returns the exit code."""
    import orjson

    if args.workers is not None and args.workers < 1:
        return _error(f"--workers: must be >= 1, got {args.workers}", 2)
    try:
        rows = sweep(
            args.files,
            args.grid,
            sets=args.set,
            config=args.config,
            latency_ms=args.latency_ms,
            workers=args.workers,
            dask=args.dask,
        )
    except BacktestError as exc:  # bad usage or settings
        return _error(str(exc), 2)
    except SweepFailed as exc:  # the cluster could not run it
        return _error(str(exc), 1)
    if args.format == "json":
        sys.stdout.write(orjson.dumps({"rows": rows}).decode() + "\n")
    else:
        sys.stdout.write(render_rows(rows))
    return 0


def _error(reason: str, code: int) -> int:
    """The one ``error: ...`` line of a failed sweep; ``code`` is the exit status."""
    sys.stderr.write(f"error: {reason}\n")
    return code
