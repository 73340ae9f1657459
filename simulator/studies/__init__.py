"""Many runs: sweeps over knobs with replications, comparisons of scenarios, capacity plans."""
