"""The shop: the sample shop of ``dbsight demo`` as one of the platform's applications."""
