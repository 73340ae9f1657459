"""The one pydantic base class of the scenario schema: unknown fields are errors (a typo never
passes silently), validated values are frozen (a scenario cannot change under a run), and
infinities survive a round trip through plain data ("inf", not null)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")
