"""coldsim: a discrete-event simulator of serverless cold and warm starts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coldsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from .arrivals import ArrivalProcessBase as ArrivalProcess  # noqa: E402
from .compare import compare  # noqa: E402
from .errors import ScenarioError  # noqa: E402
from .eviction import EvictionPolicy, FunctionFacts  # noqa: E402
from .keepalive import Invocation, KeepAlivePolicy, Prewarm  # noqa: E402
from .placement import PlacementPolicy  # noqa: E402
from .plan import Plan, Target, plan  # noqa: E402
from .plugins import PolicyError  # noqa: E402
from .result import Result  # noqa: E402
from .scenario import load_scenario, parse_scenario  # noqa: E402
from .schema import Scenario  # noqa: E402
from .selection import IdleSelection  # noqa: E402
from .simulation import simulate  # noqa: E402
from .style import show_in_jupyter as _show_in_jupyter  # noqa: E402
from .sweep import SweepResult, sweep  # noqa: E402

_show_in_jupyter()

__all__ = [
    "ArrivalProcess", "EvictionPolicy", "FunctionFacts", "IdleSelection", "Invocation",
    "KeepAlivePolicy", "PlacementPolicy", "Plan", "PolicyError", "Prewarm", "Result",
    "Scenario", "ScenarioError", "SweepResult", "Target", "__version__", "compare",
    "load_scenario", "parse_scenario", "plan", "simulate", "sweep",
]  # fmt: skip
