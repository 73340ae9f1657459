"""The scenario schema: the single source of truth for fields, defaults and their docs
(`coldsim schema` prints it). Units are in the field names; times inside the engine are
seconds. Defaults model AWS Lambda; `[sources: key]` in a description names the entry of
docs/sources.md that supports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveInt,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..distributions import DistributionMs, DistributionS, LogNormalMs, UniformS
from ..errors import ScenarioError
from ..model import Model
from ..policies.controllers import ControllerField
from ..policies.eviction import EvictionField
from ..policies.eviction import default_policy as default_eviction
from ..policies.keepalive import overrides
from ..policies.keepalive_builtins import KeepAliveField, default_policy
from ..policies.placement import FirstFit, PlacementField
from ..policies.routing import Pack, RoutingField
from ..policies.selection import IdleSelectionField, Newest
from ..runtimes import DEFAULT_RUNTIME, MEASURED_MS, init_preset
from ..workload.arrivals import ArrivalProcessField
from ..workload.expansion import Workload, fields_for_azure2019_arrivals
from .globalstate import GlobalStateItem, resources
from .presets import DEFAULT as DEFAULT_PRESET
from .presets import MAX_MEMORY_MB, PRESETS
from .prices import Pricing
from .snapstart import SUPPORTED as SNAPSTART_RUNTIMES
from .snapstart import SnapStart


class SweepSpec(Model):
    """The `sweep:` block: knobs (dotted paths) and their values, for `coldsim sweep`."""

    grid: dict[str, list[Any]] = Field(
        description="Dotted path -> values, e.g. {platform.keep_alive.idle_s: [60, 300, 600]}."
    )
    replications: int = Field(5, ge=1, le=1000, description="Runs per point (seeds shared).")


class Outputs(Model):
    """The `outputs:` block: what a run writes besides its summary, figures and the instance
    and throttle logs."""

    requests: Literal["all", "none"] | float = Field(
        "all",
        description=(
            "invocations.parquet, one row per request: all of them, none (no file), or a "
            "fraction in (0, 1]: a uniform sample, each request kept with that probability by "
            "the run's seed (the file's metadata says it is a sample). The summary and figures "
            "always count every request."
        ),
    )

    @field_validator("requests", mode="before")
    @classmethod
    def _all_none_or_fraction(cls, value):
        if isinstance(value, str) and value in ("all", "none"):
            return value
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not (ok and 0 < value <= 1 and math.isfinite(value)):
            raise ValueError(f"must be all, none or a fraction in (0, 1], got {value!r}")
        return "all" if value == 1 else float(value)


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


#: The longest span simulated: 10 years (longer ones are mistaken units, as epoch seconds).
MAX_DURATION_S = 10 * 365.25 * 86400

#: Requests one run may generate (request ids are 32-bit; ~45 min of engine time at 1e9).
MAX_REQUESTS = 1e9

#: Memory per vCPU on Lambda [sources: aws-memory-cpu].
VCPU_MB = 1769

#: Memory per vCPU Lambda Managed Instances allow, MB [sources: aws-managed-instances].
MANAGED_MB_PER_VCPU = (2048, 8192)

#: AWS keeps at least this much account concurrency unreserved [sources: aws-concurrency].
UNRESERVED_MIN = 100

#: Labels of the branches of "a number or a mapping" fields; error paths leave them out.
BRANCH_TAGS = frozenset({"number", "mapping", "list"})


def _shape(value: Any) -> str:
    if isinstance(value, dict | BaseModel):
        return "mapping"
    return "list" if isinstance(value, list) else "number"


def number_or(number: Any, other: Any, tag: str = "mapping") -> Any:
    """A field taking a plain number or another form (a distribution, a schedule), told apart
    by the input's shape, so that errors speak of the form the user wrote."""
    return Annotated[
        Annotated[number, Tag("number")] | Annotated[other, Tag(tag)],
        Discriminator(_shape),
    ]


class Scaling(Model):
    """How fast a function may add on-demand instances: a token bucket holding `instances`
    tokens, refilled continuously at instances / per_s per second; a new instance takes one."""

    instances: int = Field(
        1000, ge=1, description="Bucket size: instances a function may add in a burst (1,000)."
    )
    per_s: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="Seconds to refill the whole bucket (10 s)."
    )


class AsyncRetry(Model):
    """Backoff of throttled asynchronous requests (AWS requeues them) [sources: aws-async]."""

    first_delay_s: float = Field(1.0, gt=0, description="Delay before the first retry, s (1 s).")
    max_delay_s: float = Field(300.0, gt=0, description="The delay doubles up to this, s (5 min).")


class ProvisionedAllocation(Model):
    """How fast raised provisioned concurrency becomes usable [sources: aws-pc-allocation]."""

    delay_s: float = Field(
        90.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Time from a raise until its environments can serve, s (90 s: AWS's guide says "
            "about 1-2 minutes and publishes no exact figure)."
        ),
    )
    per_minute: float = Field(
        6000.0,
        gt=0,
        allow_inf_nan=False,
        description="Environments allocated per minute per function (6,000, AWS's rate).",
    )

    def ready_after_s(self, added: int) -> float:
        """When `added` environments of one raise are all usable: none is before the whole
        raise is allocated."""
        return self.delay_s + 60.0 * added / self.per_minute


#: The most hosts a platform may have (all classes together).
MAX_HOSTS = 100_000


class HostClass(Model):
    """Hosts alike: how many, their memory, cores, speed and price."""

    name: str = Field(pattern=NAME_PATTERN, max_length=100, description="The class's name.")
    count: int = Field(ge=1, le=MAX_HOSTS, description="Hosts of this class.")
    memory_mb: float = Field(
        gt=0, le=1e9, allow_inf_nan=False, description="Memory of each for instances, MB."
    )
    cpus: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Cores of each; with hosts.cpu shared the requests running on a host share "
        "them (null: as many as requests, never contended).",
    )
    speed: float = Field(
        1.0, gt=0, allow_inf_nan=False,
        description="Relative speed: handler times are divided by it (2: twice as fast).",
    )  # fmt: skip
    price_per_hour: float = Field(
        0.0, ge=0, allow_inf_nan=False,
        description="What one host costs the provider per hour, USD (0: not priced).",
    )  # fmt: skip


class Hosts(Model):
    """The machines instances run on (a provider's view: OpenWhisk, Knative, your own FaaS).
    Each instance holds its function's host_memory_mb on one host from the start of its init
    until it ends. Alike hosts (count, memory_mb), or `classes` of hosts (a list given as
    `hosts` stands for them)."""

    count: int = Field(
        None, ge=1, le=MAX_HOSTS, description="Number of hosts (with classes: their total)."
    )
    memory_mb: float = Field(
        None, gt=0, le=1e9, allow_inf_nan=False,
        description="Memory of each host for instances, MB (with classes: the largest).",
    )  # fmt: skip
    classes: list[HostClass] | None = Field(
        None,
        min_length=1,
        description=(
            "Host classes, each {name, count, memory_mb, cpus, speed, price_per_hour}: "
            "numbered in this order (the first class's hosts first). Heterogeneous clusters "
            "(IceBreaker's high-end and low-end servers) [sources: icebreaker]."
        ),
    )
    cpu: Literal["none", "shared"] = Field(
        "none",
        description=(
            "shared: the requests running on a host share its classes' cpus by processor "
            "sharing (n requests on c cores each run at min(1, c / n) of their speed), as "
            "dslab-faas and faas-sim model hosts [sources: dslab-faas]; none: no contention."
        ),
    )
    placement: PlacementField = Field(
        default_factory=lambda: FirstFit(policy="first-fit"),
        description=(
            "Which host a new instance goes on: first-fit (lowest-numbered with room), "
            "least-loaded (most free memory), hashing (a function's home host by its name, "
            "then the next ones: locality), random, or a plug-in class. Default first-fit."
        ),
    )
    on_full: Literal["drop", "queue"] = Field(
        "drop",
        description=(
            "When no host can make room for a new instance, even by evicting: drop the request "
            "(FaasCache's rule), or let it wait, at most max_wait_s: memory goes to waiting "
            "requests first come, first served, and a waiting request takes an instance of "
            "its own function as soon as one is free."
        ),
    )
    max_wait_s: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "With on_full queue: a request waits at most this long, then is dropped (60 s; "
            "coldsim's choice, no platform publishes one)."
        ),
    )


    @model_validator(mode="before")
    @classmethod
    def _a_list_is_classes(cls, data):
        return {"classes": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _alike_or_classes(self) -> Hosts:
        if self.classes is None:
            if self.count is None or self.memory_mb is None:
                raise ValueError("give count and memory_mb, or classes")
            return self
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"classes: names must be unique, got {names}")
        count = sum(c.count for c in self.classes)
        if count > MAX_HOSTS:
            raise ValueError(f"classes: {count:,} hosts in all; at most {MAX_HOSTS:,}")
        largest = max(c.memory_mb for c in self.classes)
        if self.count not in (None, count) or self.memory_mb not in (None, largest):
            raise ValueError(
                "give count and memory_mb, or classes (count and memory_mb then follow from "
                "them)"
            )
        object.__setattr__(self, "count", count)  # (derived: a dump re-validates alike)
        object.__setattr__(self, "memory_mb", largest)
        return self

    def per_host(self, field: str) -> list:
        """A class field's value for each host, in host order (alike hosts: one class)."""
        if self.classes is None:
            alike = {"name": "hosts", "memory_mb": self.memory_mb, "cpus": None,
                     "speed": 1.0, "price_per_hour": 0.0}  # fmt: skip
            return [alike[field]] * self.count
        return [getattr(c, field) for c in self.classes for _ in range(c.count)]

    def class_of_host(self) -> list[int]:
        """Each host's class (its index in classes; 0 for alike hosts)."""
        if self.classes is None:
            return [0] * self.count
        return [i for i, c in enumerate(self.classes) for _ in range(c.count)]


class Platform(Model):
    """How the platform manages instances (execution environments), limits and prices."""

    preset: Literal[tuple(PRESETS)] = Field(  # type: ignore[valid-type]
        DEFAULT_PRESET,
        description=(
            "The platform modelled: a bundle of defaults for the fields a scenario leaves "
            "out (set ones win). aws-lambda (default: this schema's own defaults), "
            "azure-functions (Consumption plan), cloud-run, knative, openwhisk, or research "
            "(no limits, no recycling, no memory floor, no prices, fixed 10-min keep-alive). "
            "Each value and its source: docs/presets.md or `coldsim schema --presets`."
        ),
    )
    keep_alive: KeepAliveField = Field(
        default_factory=default_policy,
        description=(
            "When an idle instance is evicted: `{policy: fixed, idle_s: 600}` or `{policy: "
            "random, idle_s: <distribution in s>}`. Default random, uniform 300-420 s."
        ),
    )
    idle_selection: IdleSelectionField = Field(
        default_factory=lambda: Newest(policy="newest"),
        description=(
            "Which idle instance serves a request: newest (created most recently), mru (most "
            "recently finished), lru (least recently finished) or random. Default newest: the "
            "rule of SimFaaS, derived from AWS Lambda measurements [sources: simfaas]; "
            "it lets older instances drain and expire."
        ),
    )
    max_lifetime_s: number_or(PositiveSeconds, DistributionS) | None = Field(
        default_factory=lambda: UniformS(dist="uniform", low_s=6300.0, high_s=8100.0),
        description=(
            "Retire an instance this long after its creation, once it is idle (a busy one "
            "finishes its request first): seconds, a distribution in s drawn per instance, or "
            "null = never. Default uniform 1.75-2.25 h: AWS terminates environments 'every few "
            "hours' even when busy, measured at about 2 h [sources: aws-lifecycle, recycling-2h]."
        ),
    )
    concurrency_limit: int | None = Field(
        1000,
        ge=1,
        description=(
            "Account concurrency: requests in flight (init + execution) across all functions; "
            "null = unlimited. Default 1,000, AWS's default per Region [sources: aws-concurrency]."
        ),
    )
    scaling: Scaling | None = Field(
        default_factory=Scaling,
        description=(
            "Per-function scaling rate; null = unlimited. Default 1,000 new instances per 10 s, "
            "refilled continuously (AWS since Nov 2023) [sources: aws-scaling]."
        ),
    )
    instance_scope: Literal["function", "app"] = Field(
        "function",
        description=(
            "Who shares warm instances: each function its own (AWS Lambda), or all functions "
            "of an `app` (Azure Functions, which keeps and warms instances per application)."
        ),
    )
    routing: RoutingField = Field(
        default_factory=lambda: Pack(policy="pack"),
        description=(
            "Where a request goes when no idle instance can take it. With functions' "
            "instance_concurrency > 1, which instance with room takes it: pack (the busiest "
            "ready one, then an idle one: fewer instances busy) or least-loaded (an idle one, "
            "then the least busy ready one: spreads load, like Knative's activator), either "
            "then one still initialising [sources: knative-concurrency]. wait-for-warm: a "
            "one-request function's request queues behind the busy instance expected to be "
            "free first if that is expected within max_wait_ms (default: the mean init), else "
            "a new instance starts (OpenWhisk's scheduler) [sources: openwhisk-scheduler]; "
            "{policy: wait-for-warm, max_wait_ms: 200, multi: pack}. Or a plug-in class. "
            "Default pack."
        ),
    )
    async_retry: AsyncRetry = Field(default_factory=AsyncRetry)
    connection_limits: dict[str, PositiveInt] | None = Field(
        None,
        description=(
            "Connections each resource named by functions' global_state accepts (a "
            "database's max_connections), e.g. {db: 100}: the summary reports the time spent "
            "above it."
        ),
    )
    provisioned_allocation: ProvisionedAllocation | None = Field(
        default_factory=ProvisionedAllocation,
        description=(
            "How long raised provisioned concurrency takes to become usable (delay_s + added "
            "/ per_minute; requests meanwhile spill over to on-demand instances). A count "
            "configured at 0 s was set up before the span: not delayed (ready after its init). "
            "Default {delay_s: 90, per_minute: 6000}; null: raises are ready after their init "
            "[sources: aws-pc-allocation]."
        ),
    )
    pricing: Pricing = Field(default_factory=Pricing)
    hosts: Hosts | None = Field(
        None,
        description=(
            "Hosts with finite memory: {count, memory_mb, placement, on_full, max_wait_s}. "
            "null (default): unlimited, the Lambda user's view."
        ),
    )
    controllers: list[ControllerField] = Field(
        default_factory=list,
        description=(
            "Platform-wide periodic decisions, each `{policy: name, ...}`: forecast-prewarm "
            "(keep instances warm for each function's forecast arrivals, IceBreaker-like "
            "[sources: icebreaker]), knative (the Knative Pod Autoscaler: instances for the "
            "average concurrency over 60 s, panic on bursts, scale to zero after 30 s grace "
            "[sources: knative-kpa]) or a plug-in class (docs/policies.md). Default none."
        ),
    )
    eviction: EvictionField = Field(
        default_factory=default_eviction,
        description=(
            "With hosts: which idle instances are evicted when a new instance finds no host "
            "with room: lru (idle longest), greedy-dual (FaasCache's clock + frequency x init "
            "cost / memory [sources: faascache]; `{policy: greedy-dual, frequency: function}` "
            "for its code's per-function frequency), size (largest first), frequency (fewest "
            "requests served first), ttl (none: idle instances leave only by keep-alive), or a "
            "plug-in class. Busy and initialising instances are never evicted. Default lru."
        ),
    )


    @model_validator(mode="after")
    def _queues_need_own_instances(self) -> Platform:
        if self.routing.routes() and self.hosts is not None and self.hosts.cpu == "shared":
            raise ValueError(
                f"routing {self.routing.policy}: not with hosts.cpu shared (a queued request's "
                "start follows ends known in advance; with shared cores they are not)"
            )
        if self.routing.routes() and self.instance_scope == "app":
            raise ValueError(
                f"routing {self.routing.policy}: not with instance_scope app (a request queues "
                "behind an instance of its own function; with shared instances use pack)"
            )
        return self

    @model_validator(mode="after")
    def _one_policy_per_shared_pool(self) -> Platform:
        if self.keep_alive.scope == "function" and self.instance_scope == "app":
            raise ValueError(
                "keep_alive.scope function: not with instance_scope app (an app's functions "
                "share their instances, so one policy decides for them: use scope app, or "
                "leave scope out)"
            )
        return self


class ProvisionedStep(Model):
    at_s: float = Field(ge=0, allow_inf_nan=False, description="From this time, s.")
    count: int = Field(ge=0, description="Provisioned instances configured.")


class Warmer(Model):
    """Scheduled ping invocations (the CloudWatch/EventBridge-schedule warming hack)."""

    interval_s: float = Field(
        300.0, gt=0, allow_inf_nan=False, description="Time between pings, s (5 min is usual)."
    )
    concurrency: int = Field(1, ge=1, description="Concurrent pings each time (instances kept).")
    duration_ms: float = Field(5.0, ge=0, allow_inf_nan=False, description="Ping handler time, ms.")
    offset_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="First ping, s.")


#: The longest call chain: functions on one path of calls, the entry included.
MAX_CHAIN_DEPTH = 16


class Call(Model):
    """A call a function's handler makes to another function, after its own handler time."""

    function: str = Field(description="The function called, by name.")
    mode: Literal["sync", "async"] = Field(
        "sync",
        description=(
            "sync: the caller waits for the callee's response, its instance busy and billed "
            "meanwhile (the callee's cold start included); async: the callee's request is "
            "placed and the caller goes on at once."
        ),
    )
    probability: float = Field(
        1.0, gt=0, le=1, description="Share of the caller's requests that make this call."
    )


class Function(Model):
    """One serverless function: its size, its cold-start and handler times, its traffic."""

    name: str = Field(
        pattern=NAME_PATTERN, max_length=200, description="Unique name (letters, digits, . _ -)."
    )
    app: str | None = Field(
        None,
        description=(
            "The application the function belongs to; with platform.instance_scope app, the "
            "functions of an app share warm instances (Azure Functions' model)."
        ),
    )
    memory_mb: int = Field(
        128,
        ge=1,
        le=MAX_MEMORY_MB,
        description=(
            "Configured memory, in MB, within the platform preset's range (aws-lambda: "
            "128-10,240, AWS's range and its default 128 MB [sources: aws-memory-cpu]; see "
            "docs/presets.md). Sets the GB-s of busy and idle time and the price."
        ),
    )
    host_memory_mb: float | None = Field(
        None,
        ge=0.001,
        le=1e9,
        allow_inf_nan=False,
        description=(
            "Memory one instance holds on its host, MB, with platform.hosts (an Azure app's "
            "functions use tens of MB: Lambda's 128 MB minimum is a rule of its configuration "
            "and prices, not of hosts). null: memory_mb."
        ),
    )
    architecture: Literal["x86_64", "arm64"] = Field(
        "x86_64", description="Instruction set; selects the prices."
    )
    runtime: Literal[tuple(MEASURED_MS)] | None = Field(  # type: ignore[valid-type]
        None,
        description=(
            "Managed runtime; selects the default `init` from measured data "
            "[sources: lambda-perf]. Without it, python3.12's."
        ),
    )
    init: DistributionMs = Field(
        default_factory=lambda: LogNormalMs.model_validate(init_preset(DEFAULT_RUNTIME)),
        description=(
            "Cold-start init time (runtime start plus global state built outside the handler), "
            "paid once per instance, in ms. Default: the runtime's measured hello-world init "
            "(python3.12: lognormal median 86 ms); add your own global-state cost."
        ),
    )
    duration: DistributionMs | None = Field(
        None,
        description=(
            "Handler execution time per request, in ms. Required unless the arrivals replay "
            "a trace that gives each request its own time (azure2021, csv with duration_ms)."
        ),
    )
    arrivals: ArrivalProcessField = Field(description="The function's request arrival process.")
    invocation: Literal["sync", "async"] = Field(
        "sync",
        description=(
            "sync: a request over a limit is throttled (HTTP 429) and never runs. async: it is "
            "queued and retried with backoff until max_event_age_s "
            "[sources: aws-throttling, aws-async]."
        ),
    )
    max_event_age_s: float = Field(
        21600.0, ge=60, le=21600, description="Async requests older than this are dropped (6 h)."
    )
    reserved_concurrency: int | None = Field(
        None,
        ge=0,
        description=(
            "Caps the function's concurrency and carves it out of the account's "
            "[sources: aws-concurrency]."
        ),
    )
    provisioned_concurrency: number_or(NonNegativeInt, list[ProvisionedStep], "list") = Field(
        0,
        description=(
            "Pre-initialised instances: a count, or a schedule [{at_s, count}, ...]. They are "
            "never idle-evicted, are replaced before recycling, and serve requests first; "
            "requests beyond them spill over to on-demand instances [sources: aws-provisioned]."
        ),
    )
    warmer: Warmer | None = Field(None, description="Scheduled warming pings; null = none.")
    calls: list[Call] = Field(
        default_factory=list,
        description=(
            "Functions this one's handler calls, in order, after its own handler time (a "
            "chain: Step Functions, a service calling another). Each call is made with its "
            "probability; sync calls one after another, each waiting for its response. The "
            "callees' requests are requests like any (limits, cold starts, their own calls); "
            "no cycles, at most 16 functions deep. Warmer pings make no calls."
        ),
    )
    instance_concurrency: int = Field(
        1,
        ge=1,
        le=1600,
        description=(
            "Requests one instance serves at once (at most 1,600). 1: AWS Lambda's on-demand "
            "model (one request per execution environment) [sources: aws-lifecycle]. More: "
            "Lambda Managed Instances, Azure Functions, Cloud Run (80 by default), Knative; a new "
            "instance starts only when every instance is full (platform.routing picks among "
            "those with room) [sources: aws-managed-instances, cloudrun-concurrency]."
        ),
    )
    snapstart: SnapStart | None = Field(
        None,
        description=(
            "Lambda SnapStart: {restore, billed_restore_ms, after_restore_ms}. Cold starts "
            "restore a snapshot instead of running `init` (global state comes with it; "
            "items holding connections are re-opened after restore). Java 17/21, Python 3.12+ and "
            ".NET 8+ only; not with provisioned concurrency [sources: aws-snapstart]. "
            "null: off."
        ),
    )
    scale_target: float = Field(
        1.0,
        gt=0,
        le=1,
        description=(
            "With instance_concurrency > 1: start instances in the background so that requests "
            "in flight stay within this share of the capacity (instances x "
            "instance_concurrency); requests meanwhile go to instances with room. 1: an "
            "instance starts only when a request finds every one full (and waits for it). "
            "Knative aims at 0.7, Cloud Run at about 0.6; Managed Instances keep headroom for "
            "traffic to double (0.5) "
            "[sources: knative-concurrency, cloudrun-concurrency, aws-managed-instances]."
        ),
    )
    min_instances: int = Field(
        0,
        ge=0,
        le=15_000,
        description=(
            "With instance_concurrency > 1: instances the platform keeps however idle, started "
            "at 0 s (ready after their init); one recycled is replaced at the next request "
            "(Managed Instances keep 3 by default; Cloud Run and Knative min instances) "
            "[sources: aws-managed-instances]."
        ),
    )
    when_full: Literal["cold-start", "throttle"] = Field(
        "cold-start",
        description=(
            "With instance_concurrency > 1, a request that finds every instance full: starts "
            "a new instance and waits for its init (Cloud Run, Knative, Azure), or is "
            "throttled (reason scaling) while instances start in the background (Managed "
            "Instances: no cold start on a request's path) [sources: aws-managed-instances]."
        ),
    )
    billing: Literal["per-request", "busy-instance", "alive-instance"] = Field(
        "per-request",
        description=(
            "per-request: Lambda's on-demand billing (each request's duration in GB-s, init "
            "included, plus a fee) [sources: aws-pricing]. busy-instance: each instance's time "
            "serving at least one request, init included (Cloud Run's request-based billing, "
            "Azure Flex Consumption). alive-instance: each instance's whole life (Lambda "
            "Managed Instances: EC2 price plus a 15% fee, no duration charge "
            "[sources: aws-managed-instances-pricing]). Instance time is priced by "
            "platform.pricing.instances, whose defaults are Managed Instances' (set them for "
            "Cloud Run or Azure); request fees apply to all three."
        ),
    )
    instance_vcpus: float | None = Field(
        None,
        gt=0,
        le=192,
        allow_inf_nan=False,
        description=(
            "vCPUs of one instance, for instance_concurrency > 1: requests share them. When "
            "n running requests need more CPU than this (n x cpu_bound), all slow down alike "
            "(processor sharing); a request alone runs at its `duration`. null: memory_mb / "
            "1,769, Lambda's rule [sources: aws-memory-cpu]. Set cpu_bound 0 for handlers "
            "that only wait (no contention)."
        ),
    )
    global_state: list[GlobalStateItem] = Field(
        default_factory=list,
        description=(
            "State built outside the handler that warm instances keep: [{name, init_ms, "
            "per_request_ms, connections, cached}]. Cached items add init_ms to each cold "
            "start and hold their connections for the instance's life; uncached ones add "
            "per_request_ms to each request and hold connections while it runs."
        ),
    )
    duration_reference_mb: int | None = Field(
        None,
        ge=128,
        le=10240,
        description=(
            "Memory at which `duration` was measured; then the handler time follows memory_mb: "
            "Lambda gives a handler CPU in proportion to memory, 1,769 MB = 1 vCPU "
            "[sources: aws-memory-cpu, aws-init-cpu]. The cpu_bound share of the time scales "
            "with 1/vCPU, capped "
            "at 1 vCPU (a single-threaded handler); init is not scaled (it runs on a full vCPU). "
            "null: duration is taken as is."
        ),
    )
    cpu_bound: float = Field(
        1.0, ge=0, le=1, description="Share of the handler time that is CPU work (the rest waits)."
    )

    def vcpus(self) -> float:
        """vCPUs of one instance: instance_vcpus, else Lambda's memory_mb / 1,769."""
        return self.instance_vcpus if self.instance_vcpus is not None else self.memory_mb / VCPU_MB

    def requests_at_full_speed(self) -> float | None:
        """With instance_concurrency > 1: how many requests an instance runs before they
        slow each other (max(vCPUs, cpu_bound) / cpu_bound); None if never reached."""
        if self.cpu_bound == 0:
            return None
        capacity = max(self.vcpus(), self.cpu_bound) / self.cpu_bound
        return capacity if self.instance_concurrency > capacity else None

    def footprint_mb(self) -> float:
        """What one instance holds on its host, MB."""
        return self.memory_mb if self.host_memory_mb is None else self.host_memory_mb

    def duration_factor(self) -> float:
        """Handler time at memory_mb over handler time at duration_reference_mb."""
        if self.duration_reference_mb is None:
            return 1.0
        vcpu = lambda mb: min(mb / VCPU_MB, 1.0)  # noqa: E731
        ratio = vcpu(self.duration_reference_mb) / vcpu(self.memory_mb)
        return (1.0 - self.cpu_bound) + self.cpu_bound * ratio

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_data(cls, data, info: ValidationInfo):
        """The runtime's measured init; an Azure 2019 replay's duration and memory."""
        if not isinstance(data, dict):
            return data
        if data.get("runtime") in MEASURED_MS and "init" not in data:
            data = {**data, "init": init_preset(data["runtime"])}
        arrivals = data.get("arrivals")
        wanted = "duration" not in data or "memory_mb" not in data
        if wanted and isinstance(arrivals, dict) and arrivals.get("process") == "azure2019":
            base = (info.context or {}).get("base_dir")
            preset = PRESETS.get((info.context or {}).get("preset"), PRESETS[DEFAULT_PRESET])
            found = fields_for_azure2019_arrivals(arrivals, base, preset.memory_for)
            data = {**{k: v for k, v in found.items() if k not in data}, **data}
        return data

    @model_validator(mode="after")
    def _has_durations(self):
        if self.duration is None and not self.arrivals.provides_durations:
            raise ValueError(
                "duration is required (these arrivals carry no per-request handler times)"
            )
        return self

    @model_validator(mode="after")
    def _provisioning(self):
        steps = self.provisioned_schedule()
        if any(b.at_s <= a.at_s for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("provisioned_concurrency steps must have increasing at_s")
        top = max((st.count for st in steps), default=0)
        if self.reserved_concurrency is not None and top > self.reserved_concurrency:
            raise ValueError(
                f"provisioned_concurrency ({top}) exceeds reserved_concurrency "
                f"({self.reserved_concurrency})"
            )
        return self

    def expected_requests(self, duration_s: float) -> float:
        pings = 0.0
        if self.warmer is not None:
            w = self.warmer
            pings = max(0.0, (duration_s - w.offset_s) / w.interval_s + 1) * w.concurrency
        return self.arrivals.count(duration_s) + pings

    def provisioned_schedule(self) -> list[ProvisionedStep]:
        pc = self.provisioned_concurrency
        if isinstance(pc, int):
            return [ProvisionedStep(at_s=0.0, count=pc)] if pc else []
        return list(pc)


class Scenario(Model):
    """A simulation: the platform, the functions and the time span."""

    #: Where it was read from and whether its reader allowed plug-in imports: variants made
    #: from it (`updated`, sweep points) are validated the same way.
    _origin: dict[str, Any] = PrivateAttr(default_factory=dict)
    #: updated(scenario, overrides) of the front door that validated it (it builds on the
    #: schema, so the schema does not import it).
    _front_door: Callable[[Scenario, Mapping[str, Any]], Scenario] | None = PrivateAttr(None)
    #: Paths (platform.x, functions[i].x) whose values came from platform.preset.
    _preset_filled: list[str] = PrivateAttr(default_factory=list)
    #: The data as given (before its workload was expanded and its preset applied), when
    #: known: a variant under another preset starts again from it.
    _source: dict[str, Any] | None = PrivateAttr(None)

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=100,
        description="Names the output folder results/<name>/ (at most 100 characters).",
    )
    seed: int = Field(0, ge=0, description="Drives every random stream of the run.")
    duration_s: float = Field(
        gt=0,
        le=MAX_DURATION_S,
        allow_inf_nan=False,
        description="Arrivals are generated in [0, duration_s), in s (at most 10 years).",
    )
    warmup_s: float = Field(
        0.0, ge=0, description="Arrivals before this time (s) are simulated but not counted."
    )
    platform: Platform = Field(
        default_factory=Platform, description="Keep-alive, selection, recycling, limits, prices."
    )
    workload: Workload | None = Field(
        None,
        description=(
            "Functions generated from a trace (azure2019, azure2021, csv), added to `functions`. "
            "The resolved scenario lists them explicitly."
        ),
    )
    functions: list[Function] = Field(min_length=1, description="The functions to simulate.")
    sweep: SweepSpec | None = Field(
        None, description="Knobs and values for `coldsim sweep` (ignored by `coldsim run`)."
    )
    outputs: Outputs = Field(
        default_factory=Outputs, description="What a run writes: all requests, none or a sample."
    )

    @field_validator("workload")
    @classmethod
    def _expanded(cls, workload):
        if workload is not None:
            raise ValueError("a workload is expanded by load_scenario/parse_scenario, not here")
        return workload

    @field_validator("warmup_s")
    @classmethod
    def _warmup_inside(cls, warmup_s: float, info: ValidationInfo) -> float:
        duration_s = info.data.get("duration_s")
        if duration_s is not None and warmup_s >= duration_s:
            raise ValueError(f"must be less than duration_s ({duration_s}), got {warmup_s}")
        return warmup_s

    @field_validator("functions")
    @classmethod
    def _functions_fit(cls, functions: list[Function], info: ValidationInfo) -> list[Function]:
        seen: dict[str, int] = {}
        for i, f in enumerate(functions):
            if f.name in seen:
                raise ValueError(
                    f"[{i}].name {f.name!r} repeats [{seen[f.name]}].name: names must be unique"
                )
            seen[f.name] = i
        platform, duration_s = info.data.get("platform"), info.data.get("duration_s")
        limit = platform.concurrency_limit if platform else None
        reserved = sum(f.reserved_concurrency or 0 for f in functions)
        if limit is not None and reserved and limit - reserved < UNRESERVED_MIN:
            raise ValueError(
                f"reserved_concurrency totals {reserved}, leaving {limit - reserved} of the "
                f"concurrency_limit {limit} unreserved; AWS keeps at least {UNRESERVED_MIN}"
            )
        provisioned = sum(
            max((st.count for st in f.provisioned_schedule()), default=0)
            for f in functions
            if f.reserved_concurrency is None
        )
        if limit is not None and provisioned and provisioned > limit - reserved - UNRESERVED_MIN:
            raise ValueError(
                f"provisioned_concurrency of functions without reserved concurrency peaks at "
                f"{provisioned}; AWS allows at most the unreserved pool ({limit - reserved}) "
                f"less {UNRESERVED_MIN}"
            )
        preset = PRESETS[platform.preset if platform else DEFAULT_PRESET]
        low, high = preset.memory_mb
        for i, f in enumerate(functions):
            if not low <= f.memory_mb <= high:
                raise ValueError(
                    f"[{i}].memory_mb: {f.memory_mb} MB is outside {preset.name}'s range, "
                    f"{low:,}-{high:,} MB (platform.preset; see docs/presets.md)"
                )
            managed = preset.name == "aws-lambda" and f.billing == "alive-instance"
            if managed:  # Lambda Managed Instances (concurrency 1 to 1,600)
                if f.instance_vcpus is None:
                    raise ValueError(
                        f"[{i}].instance_vcpus: required with billing alive-instance (Lambda "
                        "Managed Instances size environments by vCPUs, with 2-8 GiB of memory "
                        "each [sources: aws-managed-instances])"
                    )
                per_vcpu = f.memory_mb / f.instance_vcpus
                if not MANAGED_MB_PER_VCPU[0] <= per_vcpu <= MANAGED_MB_PER_VCPU[1]:
                    raise ValueError(
                        f"[{i}].memory_mb: {f.memory_mb} MB for {f.instance_vcpus:g} vCPUs is "
                        f"{per_vcpu:,.0f} MB per vCPU; Lambda Managed Instances (billing "
                        "alive-instance) give 2,048-8,192 MB per vCPU "
                        "[sources: aws-managed-instances]"
                    )
            if not preset.runtime_init and "init" not in f.model_fields_set:
                raise ValueError(
                    f"[{i}].init: required with platform.preset {preset.name} (coldsim's "
                    "measured inits are AWS Lambda's; give a distribution in ms, e.g. "
                    "{dist: lognormal, median_ms: 800, sigma: 0.5})"
                )
        hosts = platform.hosts if platform else None
        if hosts is not None:
            for i, f in enumerate(functions):
                if f.footprint_mb() > hosts.memory_mb:
                    field = "host_memory_mb" if f.host_memory_mb is not None else "memory_mb"
                    raise ValueError(
                        f"[{i}].{field} {f.footprint_mb():g} exceeds platform.hosts.memory_mb "
                        f"{hosts.memory_mb:g}: an instance of {f.name!r} fits on no host"
                    )
                if hosts.cpu == "shared" and (f.instance_concurrency > 1 or f.calls):
                    what = "instance_concurrency > 1" if f.instance_concurrency > 1 else "calls"
                    raise ValueError(
                        f"[{i}]: {what} not modelled with platform.hosts.cpu shared (requests "
                        "share their host's cores one per request here); use cpu none"
                    )
                if f.provisioned_schedule():
                    raise ValueError(
                        f"[{i}].provisioned_concurrency: not modelled with platform.hosts "
                        "(provisioned concurrency is a Lambda user's option; hosts model a "
                        "provider's cluster)"
                    )
        for i, f in enumerate(functions):
            if f.snapstart is not None:
                runtime = f.runtime or DEFAULT_RUNTIME
                if runtime not in SNAPSTART_RUNTIMES:
                    raise ValueError(
                        f"[{i}].snapstart: runtime {runtime} has no SnapStart (AWS supports "
                        f"{', '.join(SNAPSTART_RUNTIMES)} among coldsim's runtimes)"
                    )
                for field, bad in (
                    ("provisioned_concurrency", bool(f.provisioned_schedule())),
                    ("instance_concurrency", f.instance_concurrency > 1),
                ):
                    if bad:
                        raise ValueError(
                            f"[{i}].snapstart: not with {field} (AWS offers SnapStart on "
                            f"on-demand functions only); drop one of them"
                        )
            if f.snapstart is not None and f.billing != "per-request":
                raise ValueError(
                    f"[{i}].snapstart: not with billing {f.billing} (SnapStart is billed per "
                    "request, as Lambda on demand); use per-request"
                )
            if (
                f.instance_vcpus is not None
                and f.instance_concurrency == 1
                and (f.billing == "per-request")
            ):
                raise ValueError(
                    f"[{i}].instance_vcpus: used only by instance_concurrency > 1 (CPU shared "
                    "by requests) or per-instance billing; drop it"
                )
            if (
                platform is not None
                and overrides(platform.keep_alive, "prewarm")
                and (f.scale_target < 1 or f.min_instances > 0)
            ):
                raise ValueError(
                    f"[{i}]: scale_target and min_instances start instances ahead, as the "
                    f"keep-alive policy {platform.keep_alive.policy} does by pre-warming; "
                    "use one of them"
                )
            if f.billing != "per-request" and f.provisioned_schedule():
                raise ValueError(
                    f"[{i}].billing {f.billing}: not modelled with provisioned_concurrency "
                    "(provisioned concurrency is billed per request by Lambda); use per-request"
                )
            if f.instance_concurrency == 1:
                for field, bad in (
                    ("scale_target", f.scale_target < 1),
                    ("min_instances", f.min_instances > 0),
                    ("when_full", f.when_full != "cold-start"),
                ):
                    if bad:
                        raise ValueError(
                            f"[{i}].{field} {getattr(f, field)}: only with instance_concurrency "
                            "> 1 (for Lambda's one request per instance, use "
                            "provisioned_concurrency)"
                        )
                continue
            if f.provisioned_schedule():
                raise ValueError(
                    f"[{i}].instance_concurrency {f.instance_concurrency}: not modelled with "
                    "provisioned_concurrency (AWS's provisioned concurrency is one request per "
                    "environment); use 1, or drop provisioned_concurrency"
                )
            if platform is not None and platform.instance_scope == "app":
                raise ValueError(
                    f"[{i}].instance_concurrency {f.instance_concurrency}: not modelled with "
                    "platform.instance_scope app (instances shared by an app's functions serve "
                    "one request at a time here)"
                )
        _check_calls(functions)
        if duration_s is not None:
            expected = sum(chain_expected(functions, duration_s))
            if expected > MAX_REQUESTS:
                raise ValueError(
                    f"about {expected:.3g} requests expected in duration_s; at most "
                    f"{MAX_REQUESTS:.0e} per run (split the span or lower the rates)"
                )
        return functions

    @model_validator(mode="after")
    def _named_resources_exist(self) -> Scenario:
        """connection_limits name resources that functions' global_state holds connections
        to (a typo would silently never apply); a function names each item once."""
        for i, f in enumerate(self.functions):
            seen: dict[str, int] = {}
            for j, item in enumerate(f.global_state):
                if item.name in seen:
                    raise ValueError(
                        f"functions[{i}].global_state[{j}].name: {item.name!r} repeats "
                        f"global_state[{seen[item.name]}]; a function names each item once"
                    )
                seen[item.name] = j
        held = resources(self.functions)
        for name in self.platform.connection_limits or {}:
            if name not in held:
                known = ", ".join(repr(n) for n in held) or "none"
                raise ValueError(
                    f"platform.connection_limits.{name}: no function's global_state holds "
                    f"connections to {name!r} (items that hold connections: {known})"
                )
        return self

    def unused_settings(self) -> list[str]:
        """Settings the scenario gives that change nothing in this run, each as
        "path: why" (fields left at their defaults, written or not, are not listed: a run's
        resolved scenario.yaml writes them all)."""
        p, out = self.platform, []

        def given(model: BaseModel, name: str) -> bool:  # set, to other than the default
            default = type(model).model_fields[name].get_default(call_default_factory=True)
            return name in model.model_fields_set and getattr(model, name) != default

        multi = any(f.instance_concurrency > 1 for f in self.functions)
        if given(p, "routing") and not p.routing.routes() and not multi:
            out.append(
                f"platform.routing: {p.routing.policy} chooses among instances of functions "
                "with instance_concurrency > 1, and no function has it"
            )
        if given(p, "eviction") and p.hosts is None:
            out.append("platform.eviction: evicts only on hosts with finite memory (no hosts)")
        hosts = p.hosts
        if hosts is not None and given(hosts, "max_wait_s") and hosts.on_full == "drop":
            out.append("platform.hosts.max_wait_s: used only with on_full queue")
        for i, f in enumerate(self.functions):
            for j, step in enumerate(f.provisioned_schedule()):
                if step.at_s >= self.duration_s and not isinstance(f.provisioned_concurrency, int):
                    out.append(
                        f"functions[{i}].provisioned_concurrency[{j}].at_s: {step.at_s:g} is at "
                        f"or after duration_s ({self.duration_s:g}): the step never applies"
                    )
        return out

    def chained(self) -> bool:
        """Whether any function calls another."""
        return any(f.calls for f in self.functions)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON types), with every default filled in."""
        return self.model_dump(mode="json", by_alias=True)

    def updated(self, overrides: Mapping[str, Any]) -> Scenario:
        """A validated copy with dotted-path fields replaced, through the front door that
        validated this one (coldsim.parse_scenario: same wording of errors, same consent to
        plug-in imports).

        Example: `scenario.updated({"platform.keep_alive.idle_s": 60})`."""
        if self._front_door is None:
            raise ScenarioError(
                "this Scenario was not made by load_scenario or parse_scenario: make it with "
                "one of them to update it"
            )
        return self._front_door(self, overrides)

    def origin(self) -> dict[str, Any]:
        """parse_scenario's keywords that validated this scenario: base_dir, file and
        allow_import."""
        return {"base_dir": None, "file": None, "allow_import": False, **self._origin}


def _check_calls(functions: list[Function]) -> None:
    """Calls name existing functions that can take them; no cycle; at most MAX_CHAIN_DEPTH
    functions on a path."""
    index = {f.name: i for i, f in enumerate(functions)}
    for i, f in enumerate(functions):
        if f.calls and f.instance_concurrency > 1:
            raise ValueError(
                f"[{i}].calls: not modelled with instance_concurrency > 1 (a caller waiting "
                "for a sync call holds its instance; use 1)"
            )
        for j, call in enumerate(f.calls):
            where = f"[{i}].calls[{j}].function"
            k = index.get(call.function)
            if k is None:
                raise ValueError(f"{where} {call.function!r}: no such function in the scenario")
            callee = functions[k]
            if call.mode == "sync" and callee.invocation == "async":
                raise ValueError(
                    f"{where} {call.function!r}: a sync call to a function whose invocation is "
                    "async; make the call async, or the function sync"
                )
            if callee.duration is None:
                raise ValueError(
                    f"{where} {call.function!r}: a callee needs a `duration` distribution (its "
                    "handler times for calls; a trace gives them only for its own requests)"
                )
    depth: dict[int, int] = {}  # functions on the longest path from each
    state: dict[int, int] = {}  # 1: on the current path, 2: done

    def visit(i: int, path: list[int]) -> int:
        if state.get(i) == 1:
            cycle = [functions[j].name for j in path[path.index(i):]] + [functions[i].name]
            raise ValueError(f"calls form a cycle: {' -> '.join(cycle)}")
        if state.get(i) == 2:
            return depth[i]
        state[i] = 1
        below = [visit(index[c.function], [*path, i]) for c in functions[i].calls]
        state[i] = 2
        depth[i] = 1 + max(below, default=0)
        if depth[i] > MAX_CHAIN_DEPTH:
            raise ValueError(
                f"[{i}].calls: a chain of {depth[i]} functions from {functions[i].name!r}; "
                f"at most {MAX_CHAIN_DEPTH}"
            )
        return depth[i]

    for i in range(len(functions)):
        visit(i, [])


def chain_expected(functions: list[Function], duration_s: float) -> list[float]:
    """Expected requests per function in duration_s, those of calls included (callers'
    expected requests times the calls' probabilities, down the chains)."""
    own = [f.expected_requests(duration_s) for f in functions]
    if not any(f.calls for f in functions):
        return own
    index = {f.name: i for i, f in enumerate(functions)}
    total = list(own)
    order: list[int] = []  # callers before callees
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for c in functions[i].calls:
            visit(index[c.function])
        order.append(i)

    for i in range(len(functions)):
        visit(i)
    for i in reversed(order):
        for c in functions[i].calls:
            total[index[c.function]] += total[i] * c.probability
    return total
