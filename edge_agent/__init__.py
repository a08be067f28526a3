"""The edge program: sources -> recognizers -> outbox -> publisher."""
