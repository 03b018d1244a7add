"""App A: customer accounts and their orders, at ``/v1/app-a`` (codes 10000-19999)."""
