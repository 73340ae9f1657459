"""The one pydantic base class of the scenario schema: unknown fields are errors (a typo never
passes silently) and validated values are frozen (a scenario cannot change under a run)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
