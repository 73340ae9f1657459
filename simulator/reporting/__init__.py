"""From event logs to answers: the logs as tables (`logs`), the summary, costs, latency
statistics, intervals over time, figures, and writing a run's results (`result`, `output`)."""
