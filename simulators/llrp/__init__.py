"""LLRP 1.0.1 reader simulator (Impinj Speedway R420, Zebra FX9600) fed with portal sightings.

See README.md. The parts others use: `LLRPReader` (reader.py), `SightingDriver` and `Fault`
(driver.py), `serve` (run.py).
"""
