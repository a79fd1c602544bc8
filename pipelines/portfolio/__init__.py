"""Portfolio construction: risk model, optimizer, and the planner writing target weights."""
