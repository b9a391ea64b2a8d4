"""Throughput of the billwarden emulator as the official SDK sees it.

Starts the emulator on a free local port, creates customers (and subscriptions when the emulator
can) through `stripe.StripeClient`, then times a fixed number of sequential calls:

    .venv/bin/python bench/emulator.py [--retrieves 2000] [--lists 200] [--objects 300]

Prints requests/s, p50 and p99 latency per operation, through the SDK and, as a baseline for the
server alone, as raw HTTP requests (httpx, no SDK parsing). Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import stripe

from billwarden_emulator.testing import running_emulator

API_KEY = "sk_test_bench_emulator"


@contextlib.contextmanager
def emulator_url() -> Iterator[str]:
    """Run the emulator whether `running_emulator()` is a sync or an async context manager."""
    manager: Any = running_emulator()
    if hasattr(manager, "__enter__"):
        with manager as url:
            yield str(url)
        return
    loop = asyncio.new_event_loop()
    try:
        url = loop.run_until_complete(manager.__aenter__())
        try:
            yield str(url)
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


def seed(client: stripe.StripeClient, count: int) -> tuple[list[str], str]:
    """Create `count` customers, and a subscription each when possible.

    Returns the customer ids and which list the list benchmark should use.
    """
    customers = [
        client.v1.customers.create(
            {"email": f"bench{number}@example.com", "name": f"Bench {number}"}
        )
        for number in range(count)
    ]
    try:
        product = client.v1.products.create({"name": "Bench plan"})
        price = client.v1.prices.create(
            {
                "product": product.id,
                "unit_amount": 1200,
                "currency": "usd",
                "recurring": {"interval": "month"},
            }
        )
        for customer in customers:
            client.v1.subscriptions.create(
                {"customer": customer.id, "items": [{"price": price.id}]}
            )
    except stripe.StripeError as error:
        print(f"subscriptions unavailable ({error.user_message or error}); listing customers")
        return [customer.id for customer in customers], "customers"
    return [customer.id for customer in customers], "subscriptions"


def measure(name: str, calls: int, operation: Callable[[int], object]) -> None:
    for number in range(min(50, calls)):  # warm up connections and caches
        operation(number)
    durations = []
    started = time.perf_counter()
    for number in range(calls):
        call_started = time.perf_counter()
        operation(number)
        durations.append(time.perf_counter() - call_started)
    elapsed = time.perf_counter() - started
    durations.sort()
    p50 = statistics.median(durations) * 1000
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))] * 1000
    print(
        f"{name:<36} {calls:>6} calls  {calls / elapsed:>8.0f} req/s  "
        f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrieves", type=int, default=2000, help="customers.retrieve calls")
    parser.add_argument("--lists", type=int, default=200, help="list(limit=100) calls")
    parser.add_argument("--objects", type=int, default=300, help="customers/subscriptions made")
    args = parser.parse_args()

    with emulator_url() as url:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": url})
        setup_started = time.perf_counter()
        customer_ids, listed = seed(client, args.objects)
        setup = time.perf_counter() - setup_started
        print(
            f"emulator at {url}; python {platform.python_version()}, stripe {stripe.VERSION}, "
            f"{args.objects} customers"
            + (" with a subscription each" if listed == "subscriptions" else "")
            + f" created in {setup:.2f}s"
        )
        measure(
            "customers.retrieve",
            args.retrieves,
            lambda number: client.v1.customers.retrieve(customer_ids[number % len(customer_ids)]),
        )
        lister = client.v1.subscriptions if listed == "subscriptions" else client.v1.customers
        measure(f"{listed}.list(limit=100)", args.lists, lambda _: lister.list({"limit": 100}))
        if listed == "subscriptions":
            measure(
                "customers.list(limit=100)",
                args.lists,
                lambda _: client.v1.customers.list({"limit": 100}),
            )

        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=url, headers=headers, trust_env=False) as http:
            measure(
                "raw GET /v1/customers/{id}",
                args.retrieves,
                lambda number: http.get(
                    f"/v1/customers/{customer_ids[number % len(customer_ids)]}"
                ).raise_for_status(),
            )
            measure(
                f"raw GET /v1/{listed}?limit=100",
                args.lists,
                lambda _: http.get(f"/v1/{listed}", params={"limit": 100}).raise_for_status(),
            )


if __name__ == "__main__":
    main()
