"""From a fit to a decision: forecast, key-result values, grades, the recommendation, its words."""
