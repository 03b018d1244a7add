"""dbsight: database observability for Python web services."""
