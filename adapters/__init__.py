"""Southbound adapters: each translates the `bridge.ports.Charger` port to one legacy interface."""
