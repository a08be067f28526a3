"""Device simulators (scanner; later LLRP reader, Modbus shelf), the scenario engine, the demo."""
