"""Stockwire: the wire contract shared by edge agents and the aggregator."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
