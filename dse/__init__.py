"""Design-space exploration: sweeps, results store, Pareto fronts."""
