"""App B: the product catalog and its inventory, at ``/v1/app-b`` (codes 20000-29999)."""
