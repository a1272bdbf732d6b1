"""Simulated chargers: pure physics plus wire-level simulators (Modbus, OCPP, MQTT) for the demo and tests."""
