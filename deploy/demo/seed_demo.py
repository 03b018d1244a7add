"""Load the demo shop's tables into the primary once (the compose file's demo-seed job): the
demo service (the image's default APP_MODULE) serves them. Does nothing when they exist,
so a restart keeps the data; DBSIGHT_DEMO_SCALE sizes a first load (1 = the demo's size)."""

import asyncio
import os

import asyncpg

from dbsight.demo import load_sample_data


async def main() -> None:
    password = os.environ["POSTGRES_PASSWORD"]
    host = os.environ.get("DEMO_SEED_HOST", "postgres-primary")
    conn = await asyncpg.connect(host=host, user="app", password=password, database="shop")
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.order_items') IS NOT NULL")
    finally:
        await conn.close()
    if exists:
        print("demo-seed: the shop tables are there already")
        return
    dsn = f"postgresql://app@{host}:5432/shop"
    os.environ["PGPASSWORD"] = password  # asyncpg reads it, so the DSN carries no secret
    size = await load_sample_data(dsn, scale=float(os.environ.get("DBSIGHT_DEMO_SCALE", "1")))
    print(f"demo-seed: loaded {size.customers} customers, {size.orders} orders")


if __name__ == "__main__":
    asyncio.run(main())
