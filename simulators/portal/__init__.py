"""RFID dock-door portal physics: tagged loads crossing a door, read by a 4-port reader.

Pure and deterministic (a seeded `random.Random` per load); no I/O. The output is
`simulators.sightings.Sighting`, which the LLRP reader simulator folds into reports.
"""
