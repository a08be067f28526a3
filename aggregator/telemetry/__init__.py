"""Time-series telemetry: points built through the catalog, and the sink that writes them."""
