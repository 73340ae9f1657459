"""Readers of serverless traces: the Azure Functions 2019 per-minute counts, the Azure 2021
per-invocation trace, and the user's own CSV log. Readers stream with pandas in chunks, check
every cell, and report a malformed row by file, line and column (a ScenarioError)."""
