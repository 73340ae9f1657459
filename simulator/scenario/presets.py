"""Platform presets: `platform.preset` names a bundle of defaults modelling one platform.

The schema's own defaults are AWS Lambda's (preset `aws-lambda`). Another preset fills the
fields a scenario leaves out with that platform's values before validation; a field the
scenario sets always wins. Each value cites a key of docs/sources.md; `docs/presets.md` is
made from this table (`coldsim schema --presets` prints it).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

#: Memory, MB, that no platform preset's instance exceeds (1 TiB): a bound against typos.
MAX_MEMORY_MB = 1_048_576

#: Prices for platforms one runs oneself, or a neutral study: every price 0 (give
#: platform.pricing to price a run).
NO_PRICES: dict[str, Any] = {
    "request_usd": 0.0,
    "x86_64": {"gb_s_usd": 0.0, "provisioned_gb_s_usd": 0.0, "provisioned_exec_gb_s_usd": 0.0},
    "arm64": {"gb_s_usd": 0.0, "provisioned_gb_s_usd": 0.0, "provisioned_exec_gb_s_usd": 0.0},
    "instances": {"vcpu_hour_usd": 0.0, "gb_hour_usd": 0.0, "management_fee": 0.0},
    "snapstart_cache_gb_s_usd": 0.0,
    "snapstart_restore_gb_usd": 0.0,
}

#: Platform fields a preset other than aws-lambda turns off: Lambda's own mechanisms.
NOT_LAMBDA: dict[str, Any] = {
    "max_lifetime_s": None,
    "concurrency_limit": None,
    "scaling": None,
    "provisioned_allocation": None,
}


@dataclass(frozen=True)
class Preset:
    """One platform's defaults, as scenario data.

    platform: defaults of `platform` fields; function: defaults of every function's fields;
    memory_mb: the memory_mb range the platform allows (inclusive); runtime_init: whether a
    function without `init` takes its runtime's measured AWS Lambda hello-world init (only
    Lambda's are measured; elsewhere `init` is required); sources: docs/sources.md keys per
    field; notes: what the preset does not model."""

    name: str
    summary: str
    platform: dict[str, Any] = field(default_factory=dict)
    function: dict[str, Any] = field(default_factory=dict)
    memory_mb: tuple[int, int] = (128, 10240)
    runtime_init: bool = False
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def memory_for(self, footprint_mb: float) -> int:
        """memory_mb for an instance holding footprint_mb (a trace's figure): whole MB,
        within the platform's range."""
        low, high = self.memory_mb
        return int(min(high, max(low, math.ceil(footprint_mb))))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="aws-lambda",
            summary="AWS Lambda on demand: the schema's own defaults.",
            runtime_init=True,
            sources={"(all)": "see each field's description in `coldsim schema`"},
        ),
        Preset(
            name="azure-functions",
            summary=(
                "Azure Functions, Consumption plan: an app's functions share instances, kept "
                "20 min idle; billed per execution."
            ),
            platform={
                **NOT_LAMBDA,
                "keep_alive": {"policy": "fixed", "idle_s": 1200.0},
                "instance_scope": "app",
                "pricing": {
                    **NO_PRICES,
                    "request_usd": 2e-7,
                    "x86_64": {**NO_PRICES["x86_64"], "gb_s_usd": 0.000016},
                    "arm64": {**NO_PRICES["arm64"], "gb_s_usd": 0.000016},
                    "billing_granularity_ms": 1.0,
                    "min_billed_ms": 100.0,
                    "billed_memory_step_mb": 128,
                    "bill_init": False,
                },
            },
            memory_mb=(1, 1536),
            sources={
                "keep_alive": "azure-keep-alive",
                "instance_scope": "azure-scale",
                "concurrency_limit": "azure-scale",
                "memory_mb": "azure-scale",
                "pricing": "azure-pricing",
            },
            notes=(
                "An instance serves one request at a time here (an app's functions share it); "
                "Azure runs several at once on one instance.",
                "Scale-out is not rate-limited here: Azure adds at most one instance per "
                "second per app (HTTP) and runs the requests meanwhile on the instances it "
                "has, while coldsim's scaling bucket would throttle them (scaling: null).",
                "The 200-instance limit per app and the 10-minute function timeout are not "
                "modelled; Azure publishes no recycling period (none is modelled).",
                "memory_mb is the memory an execution uses (Azure bills it rounded up to "
                "128 MB, at least 100 ms, with no INIT charge).",
            ),
        ),
        Preset(
            name="cloud-run",
            summary=(
                "Google Cloud Run services: 80 requests per instance, autoscaled at 60% of it, "
                "idle instances kept up to 15 min, request-based billing."
            ),
            platform={
                **NOT_LAMBDA,
                "keep_alive": {"policy": "fixed", "idle_s": 900.0},
                "pricing": {
                    **NO_PRICES,
                    "request_usd": 4e-7,
                    "instances": {
                        "vcpu_hour_usd": 0.0864,
                        "gb_hour_usd": 0.009,
                        "management_fee": 0.0,
                    },
                    "billing_granularity_ms": 100.0,
                    "bill_init": False,
                },
            },
            function={
                "memory_mb": 512,
                "instance_concurrency": 80,
                "scale_target": 0.6,
                "instance_vcpus": 1.0,
                "billing": "busy-instance",
            },
            memory_mb=(128, 32768),
            sources={
                "keep_alive": "cloudrun-autoscaling",
                "instance_concurrency": "cloudrun-concurrency",
                "scale_target": "cloudrun-concurrency",
                "memory_mb": "cloudrun-resources",
                "instance_vcpus": "cloudrun-resources",
                "billing": "cloudrun-pricing",
                "pricing": "cloudrun-pricing",
            },
            notes=(
                "Tier 1 prices with CPU allocated only while requests run; free tier off.",
                "Max instances (set by the regional quota) and request queueing at the limit "
                "are not modelled.",
            ),
        ),
        Preset(
            name="knative",
            summary=(
                "Knative Serving with its Pod Autoscaler (KPA): 100 requests per pod aimed at "
                "70%, stable and panic windows, scale to zero; self-hosted, no prices."
            ),
            platform={
                **NOT_LAMBDA,
                "keep_alive": {"policy": "fixed", "idle_s": math.inf},
                "controllers": [{"policy": "knative"}],
                "pricing": NO_PRICES,
            },
            function={"instance_concurrency": 100},
            memory_mb=(1, MAX_MEMORY_MB),
            sources={
                "controllers": "knative-kpa",
                "keep_alive": "knative-kpa",
                "instance_concurrency": "knative-concurrency",
            },
            notes=(
                "The KPA starts and retires instances; the keep-alive never reaps them.",
                "instance_concurrency 100 is a hard limit here; Knative's default "
                "containerConcurrency is 0 (unlimited), with 100 the autoscaler's soft target "
                "(at 70%): a burst beyond 100 requests per pod starts a pod here.",
                "The activator's buffering of requests at zero scale is not modelled: a request "
                "that finds every pod full starts one and waits for it.",
            ),
        ),
        Preset(
            name="openwhisk",
            summary=(
                "Apache OpenWhisk's invoker: a warm container is paused after 10 s and "
                "destroyed after 10 min unused; 100 concurrent activations per namespace; "
                "128-512 MB actions; self-hosted, no prices."
            ),
            platform={
                **NOT_LAMBDA,
                "keep_alive": {"policy": "fixed", "idle_s": 610.0},
                "concurrency_limit": 100,
                "pricing": NO_PRICES,
            },
            function={"memory_mb": 256},
            memory_mb=(128, 512),
            sources={
                "keep_alive": "openwhisk-config",
                "memory_mb": "openwhisk-limits",
                "concurrency_limit": "openwhisk-limits",
            },
            notes=(
                "A paused container is modelled as idle (its resume time is not).",
                "Stem-cell (generic pre-warmed) containers and the per-minute invocation limit "
                "are not modelled.",
            ),
        ),
        Preset(
            name="research",
            summary=(
                "A neutral setting for policy studies on traces: fixed 10-minute keep-alive, "
                "no limits, no recycling, memory as the trace gives it, no prices."
            ),
            platform={
                **NOT_LAMBDA,
                "keep_alive": {"policy": "fixed", "idle_s": 600.0},
                "pricing": NO_PRICES,
            },
            memory_mb=(1, MAX_MEMORY_MB),
            sources={"keep_alive": "faascache"},
            notes=(
                "Every function needs its own `init`: no platform's runtime is assumed.",
            ),
        ),
    )
}

DEFAULT = "aws-lambda"


def preset_of(data: Any) -> Preset:
    """The preset a scenario's data names (aws-lambda when it names none or an unknown one:
    the schema reports an unknown name)."""
    platform = data.get("platform") if isinstance(data, dict) else None
    name = platform.get("preset", DEFAULT) if isinstance(platform, dict) else DEFAULT
    return PRESETS.get(name, PRESETS[DEFAULT]) if isinstance(name, str) else PRESETS[DEFAULT]


def _merge(default: Any, given: Any) -> Any:
    """given over default, mappings merged key by key; a mapping naming its kind (policy,
    dist, process) is taken whole."""
    if isinstance(default, dict) and isinstance(given, dict):
        if any(k in given for k in ("policy", "dist", "process")):
            return given
        out = copy.deepcopy(default)
        for k, v in given.items():
            out[k] = _merge(default.get(k), v) if k in default else v
        return out
    return given


def apply(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """data with its preset's defaults filled in where it sets nothing, and the dotted paths
    filled (functions[i].field, platform.field): errors at them say where they came from."""
    preset = preset_of(data)
    if not preset.platform and not preset.function:
        return data, []
    filled: list[str] = []
    out = dict(data)
    platform = out.get("platform")
    if platform is None or isinstance(platform, dict):
        platform = dict(platform or {})
        for key, value in preset.platform.items():
            if key not in platform:
                platform[key] = copy.deepcopy(value)
                filled.append(f"platform.{key}")
            else:
                platform[key] = _merge(value, platform[key])
        out["platform"] = platform
    functions = out.get("functions")
    if isinstance(functions, list) and preset.function:
        out["functions"] = []
        for i, f in enumerate(functions):
            if isinstance(f, dict):
                f = dict(f)
                arrivals = f.get("arrivals")
                traced = isinstance(arrivals, dict) and arrivals.get("process") == "azure2019"
                for key, value in preset.function.items():
                    if key == "memory_mb" and traced:
                        continue  # the trace's memory file gives it (the preset's rule)
                    if key not in f:
                        f[key] = copy.deepcopy(value)
                        filled.append(f"functions[{i}].{key}")
            out["functions"].append(f)
    return out, filled


def markdown() -> str:
    """The presets as a Markdown table per preset (docs/presets.md's generated part)."""
    lines = []
    for p in PRESETS.values():
        lines += [f"### `{p.name}`", "", p.summary, ""]
        values = {**{f"platform.{k}": v for k, v in p.platform.items()},
                  **{f"functions[].{k}": v for k, v in p.function.items()}}  # fmt: skip
        low, high = p.memory_mb
        values["functions[].memory_mb (allowed)"] = f"{low:,}-{high:,} MB"
        values["functions[].init (default)"] = (
            "the runtime's measured Lambda hello-world init" if p.runtime_init else "required"
        )
        lines += ["| field | value | sources |", "|---|---|---|"]
        for key, value in values.items():
            short = key.split(".", 1)[1].split(" ")[0]
            source = p.sources.get(short, "")
            if not source and short in NOT_LAMBDA and p.platform.get(short) is None:
                source = "off: a Lambda mechanism"
            shown = _show(value)
            lines.append(f"| `{key}` | {shown} | {source} |")
        lines.append("")
        lines += [f"- {note}" for note in p.notes]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _show(value: Any) -> str:
    if isinstance(value, str) and value.endswith("MB"):
        return value
    if isinstance(value, float) and math.isinf(value):
        return "`.inf`"
    if value == NO_PRICES:
        return "every price 0"
    if isinstance(value, dict) and "request_usd" in value:
        shown = {}
        for k, v in value.items():
            if isinstance(v, dict):  # nested prices: only those that are not 0
                shown.update({f"{k}.{n}": x for n, x in v.items() if x != NO_PRICES[k][n]})
            elif NO_PRICES.get(k, object()) != v:
                shown[k] = v
        return _inline(shown) + ", every other price 0"
    return _inline(value)


def _inline(value: Any) -> str:
    import json

    text = json.dumps(value).replace('"', "").replace("Infinity", ".inf")
    return f"`{text}`".replace("|", "\\|")
