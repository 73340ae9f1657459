"""Prices (AWS Lambda, us-east-1 list prices, first tier): the scenario's `platform.pricing`.

Sources (docs/sources.md): aws-pricing for the prices (arm64 provisioned concurrency is
derived, ~20% below x86: AWS's page lists it per Region, not checked here); aws-init-billing
for INIT billed on demand since 1 Aug 2025. Free tier off: capacity planning compares
marginal costs. The billing rules that apply them are in reporting's `pricing`.
"""

from __future__ import annotations

from pydantic import Field

from ..model import Model

MB_PER_GB = 1024.0  # AWS bills GB-s with memory_mb / 1024


class ArchitecturePrices(Model):
    gb_s_usd: float = Field(ge=0, description="On-demand duration price per GB-s.")
    provisioned_gb_s_usd: float = Field(
        ge=0, description="Provisioned concurrency price per GB-s while configured."
    )
    provisioned_exec_gb_s_usd: float = Field(
        ge=0, description="Duration price per GB-s of executions on provisioned instances."
    )


class InstancePrices(Model):
    """Prices of functions billed per instance time (`billing` busy-instance or
    alive-instance) [sources: aws-managed-instances-pricing]."""

    vcpu_hour_usd: float = Field(
        0.0408,
        ge=0,
        description=(
            "Per vCPU-hour of an instance (instance_vcpus, or memory_mb / 1,769). Default "
            "$0.0408: an m7g.xlarge's on-demand price ($0.1632/h) over its 4 vCPU, memory "
            "included, as AWS's Managed Instances example."
        ),
    )
    gb_hour_usd: float = Field(
        0.0, ge=0, description="Per GB-hour of memory_mb (0: included in the vCPU price)."
    )
    management_fee: float = Field(
        0.15,
        ge=0,
        description="Fee as a share of the compute price (0.15: Managed Instances' 15%).",
    )


class Pricing(Model):
    """Billing: requests, duration in 1 ms units (INIT included), provisioned concurrency."""

    def billed_gb(self, memory_mb: float) -> float:
        """The GB a request of memory_mb is billed for."""
        step = self.billed_memory_step_mb
        mb = memory_mb if step is None else -(-memory_mb // step) * step
        return mb / MB_PER_GB

    request_usd: float = Field(2e-7, ge=0, description="Per request ($0.20 per million).")
    x86_64: ArchitecturePrices = Field(
        default_factory=lambda: ArchitecturePrices(
            gb_s_usd=0.0000166667,
            provisioned_gb_s_usd=0.0000041667,
            provisioned_exec_gb_s_usd=0.0000097222,
        ),
        description="x86_64 prices (first tier, us-east-1).",
    )
    arm64: ArchitecturePrices = Field(
        default_factory=lambda: ArchitecturePrices(
            gb_s_usd=0.0000133334,
            provisioned_gb_s_usd=0.0000033334,
            provisioned_exec_gb_s_usd=0.0000077778,
        ),
        description="arm64 (Graviton) prices; provisioned ones ~20% below x86 (unverified).",
    )
    billing_granularity_ms: float = Field(
        1.0, gt=0, description="Duration is rounded up to a multiple of this (1 ms since 2020)."
    )
    min_billed_ms: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "A request's duration is billed at least this long (0 on Lambda; Azure Functions "
            "Consumption bills at least 100 ms [sources: azure-pricing])."
        ),
    )
    billed_memory_step_mb: int | None = Field(
        None,
        ge=1,
        description=(
            "Memory is billed rounded up to a multiple of this, MB (null: memory_mb as "
            "configured, Lambda; Azure Functions rounds up to 128 MB [sources: azure-pricing])."
        ),
    )
    bill_init: bool = Field(
        True, description="Bill on-demand INIT at the duration price (AWS, since 1 Aug 2025)."
    )
    snapstart_cache_gb_s_usd: float = Field(
        0.0000015046,
        ge=0,
        description=(
            "SnapStart cache, per GB-s while the version is active (Python, .NET; not Java) "
            "[sources: aws-snapstart-pricing]."
        ),
    )
    snapstart_restore_gb_usd: float = Field(
        0.0001397998,
        ge=0,
        description="SnapStart restore, per GB restored (Python, .NET; not Java).",
    )
    instances: InstancePrices = Field(
        default_factory=InstancePrices,
        description="For functions billed per instance time (their `billing`).",
    )
    provisioned_rounding_s: float = Field(
        300.0,
        ge=0,
        description="Each provisioned-concurrency period is billed rounded up to this (5 min).",
    )
