"""Prices (AWS Lambda, us-east-1 list prices, first tier) and the billing rules.

Sources: aws.amazon.com/lambda/pricing and the AWS pricing calculator, via lambda-facts.md §7
(confidence H, except arm64 provisioned concurrency: ~20% below x86, L). INIT is billed for
on-demand functions since 1 Aug 2025 (AWS Compute Blog, "AWS Lambda standardizes billing for
INIT phase"). Free tier off: capacity planning compares marginal costs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArchitecturePrices(_Model):
    gb_s_usd: float = Field(ge=0, description="On-demand duration price per GB-s.")
    provisioned_gb_s_usd: float = Field(
        ge=0, description="Provisioned concurrency price per GB-s while configured."
    )
    provisioned_exec_gb_s_usd: float = Field(
        ge=0, description="Duration price per GB-s of executions on provisioned instances."
    )


class Pricing(_Model):
    """Billing: requests, duration in 1 ms units (INIT included), provisioned concurrency."""

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
    bill_init: bool = Field(
        True, description="Bill on-demand INIT at the duration price (AWS, since 1 Aug 2025)."
    )
    provisioned_rounding_s: float = Field(
        300.0,
        ge=0,
        description="Each provisioned-concurrency period is billed rounded up to this (5 min).",
    )
