"""Load the demo shop's tables into the primary once (the demo-seed job of compose.yaml and
stack.yaml): the demo service (the image's default APP_MODULE) serves them. Does nothing when
they exist, so a restart keeps the data.

    DEMO_SEED_DSN       the primary, without password (postgresql://app@postgres-primary:5432/shop)
    POSTGRES_PASSWORD   its password (the image's entrypoint reads it from POSTGRES_PASSWORD_FILE)
    DEMO_SEED_SCALE  size of a first load (1: the demo's 20 000 customers, 100 000 orders)
"""

import asyncio
import os
import sys

import asyncpg

from dbsight.demo import load_sample_data

DEFAULT_DSN = "postgresql://app@postgres-primary:5432/shop"


async def main() -> int:
    dsn = os.environ.get("DEMO_SEED_DSN", "").strip() or DEFAULT_DSN
    password = os.environ.get("POSTGRES_PASSWORD")
    if password:
        os.environ["PGPASSWORD"] = password  # libpq's variable: asyncpg reads it too
    scale = float(os.environ.get("DEMO_SEED_SCALE", "1"))
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.order_items') IS NOT NULL")
    finally:
        await conn.close()
    if exists:
        print("demo-seed: the shop's tables are there already")
        return 0
    size = await load_sample_data(dsn, scale=scale)
    print(f"demo-seed: loaded {size.customers} customers, {size.orders} orders")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
