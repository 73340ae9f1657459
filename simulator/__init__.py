"""coldsim: a discrete-event simulator of serverless cold and warm starts."""

from .errors import ScenarioError
from .policies.base import PolicyError
from .policies.context import FunctionInfo, HostState, InstanceCounts, PolicyContext
from .policies.controllers import Controller
from .policies.eviction import EvictionPolicy, FunctionFacts
from .policies.keepalive import Invocation, KeepAlivePolicy, Prewarm
from .policies.placement import PlacementPolicy
from .policies.routing import RoutingPolicy
from .policies.selection import IdleSelection
from .reporting import plots, style  # figures' helpers, as notebooks use them
from .reporting.result import Result
from .reporting.style import show_in_jupyter as _show_in_jupyter
from .scenario.loading import load_scenario, parse_scenario
from .scenario.schema import Scenario
from .simulation import simulate
from .studies.compare import compare
from .studies.plan import Plan, Target, plan
from .studies.sweep import SweepResult, sweep
from .version import __version__
from .workload.arrivals import ArrivalProcessBase as ArrivalProcess

_show_in_jupyter()

__all__ = [
    "ArrivalProcess", "Controller", "EvictionPolicy", "FunctionFacts", "FunctionInfo",
    "HostState", "IdleSelection", "InstanceCounts", "Invocation", "KeepAlivePolicy",
    "PlacementPolicy", "Plan", "PolicyContext", "PolicyError", "Prewarm", "Result",
    "RoutingPolicy", "Scenario", "ScenarioError", "SweepResult", "Target", "__version__",
    "compare", "load_scenario", "parse_scenario", "plan", "plots", "simulate", "style", "sweep",
]  # fmt: skip
