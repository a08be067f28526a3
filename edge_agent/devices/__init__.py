"""One builder per device kind: a (Source, Recognizer) pair from a device config and its profile."""
