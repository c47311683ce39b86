"""zohw: RTL generator and co-simulation flow for zeroth-order on-device training hardware."""

__version__ = "0.1.0"
