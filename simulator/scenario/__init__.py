"""The scenario: its schema (the single source of truth for fields, defaults and sources), the
validating front door that loads it, and the platform's parts it describes (prices, global
state, SnapStart) with the memory estimate of running it."""

from .loading import load_scenario, parse_scenario, set_path
from .schema import Scenario

__all__ = ["Scenario", "load_scenario", "parse_scenario", "set_path"]
