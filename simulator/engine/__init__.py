"""The simulation: the event loop and request dispatch (`core`), the merged arrival stream, the
platform's parts (instances, limits, provisioned concurrency, routing, CPU sharing, hosts and
their waiting line), the event log it records, and one run split into shards."""
