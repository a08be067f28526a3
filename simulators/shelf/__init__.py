"""A simulated load-cell shelf: lane physics with ground truth, served over Modbus."""
