"""dbsight_platform: the reference multi-application FastAPI service dbsight is built for.

Several independent applications (``apps/``) behind one entry point, on one PostgreSQL or
MySQL database and one Redis, observed by dbsight. Installed with the ``platform`` extra.
"""
