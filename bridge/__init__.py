"""evbridge: legacy EV chargers as IEC 63380 (EEBus SHIP/SPINE) devices."""

__version__ = "0.1.0"
