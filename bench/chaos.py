"""Chaos: billwarden's state ends equal to Stripe's through duplicated, shuffled deliveries,
failing Stripe calls, killed processes and a PostgreSQL restart.

On a PostgreSQL cluster of its own (initdb in a temporary directory; the machine's server is left
alone), two `billwarden serve` and two `billwarden worker` processes, and the emulator as Stripe
(a process): at least --min-events lifecycle events over at least --subscriptions subscriptions
(checkouts, plan changes, cancellations, renewals by test clock, declined renewals), 30% of the
events delivered twice, deliveries shuffled, 5% of the Stripe API calls failing with 500 or 429;
mid-run a worker and a server are killed with SIGKILL and started again, and PostgreSQL restarts.
After quiescence, every event must be in the inbox and applied, and every mirror row (customers,
subscriptions, invoice payments) and entitlement snapshot equal Stripe's final state; every
process's log is scanned for secrets. Prints the figures; exits 1 on any mismatch or secret found
(the first mismatches listed), 2 when the run itself could not run.

The driver is tests/chaos/run.py, which tests/chaos/test_chaos.py runs small on every `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ from the repository

from tests.chaos.run import ChaosOptions, run_chaos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = ChaosOptions()
    parser.add_argument("--subscriptions", type=int, default=defaults.subscriptions)
    parser.add_argument("--min-events", type=int, default=defaults.min_events)
    parser.add_argument(
        "--duplicate-rate", type=float, default=defaults.duplicate_rate, help="share sent twice"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=defaults.fault_rate, help="Stripe calls failing"
    )
    parser.add_argument(
        "--shuffle-window",
        type=float,
        default=defaults.shuffle_window,
        help="seconds within which deliveries are shuffled",
    )
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--quiescence-seconds",
        type=float,
        default=defaults.quiescence_seconds,
        help="the longest wait for every event to be applied",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy every process's log here")
    args = parser.parse_args()
    options = ChaosOptions(
        subscriptions=args.subscriptions,
        min_events=args.min_events,
        duplicate_rate=args.duplicate_rate,
        fault_rate=args.fault_rate,
        shuffle_window=args.shuffle_window,
        concurrency=args.concurrency,
        seed=args.seed,
        quiescence_seconds=args.quiescence_seconds,
        keep=args.keep_logs,
        progress=True,
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} CPUs (load {load}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    started = time.monotonic()
    try:
        result = asyncio.run(run_chaos(options))
    except KeyboardInterrupt:
        print("interrupted: its processes and its PostgreSQL were stopped", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # the run could not run: not a verdict on billwarden
        print(f"ERROR: the chaos run could not run: {type(error).__name__}: {error}")
        sys.exit(2)
    print(result.report())
    print(f"wall time: {time.monotonic() - started:.0f} s")
    if not result.clean:
        print("FAILED: billwarden's state differs from Stripe's, or a log holds a secret")
        sys.exit(1)
    print("OK: 0 mismatches, no secret in any log")


if __name__ == "__main__":
    main()
