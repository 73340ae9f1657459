"""Traffic: arrival processes (`arrivals`), trace readers (`traces`), and the expansion of a
trace into a scenario's functions (`expansion`)."""
