"""The PyMC model of the funnel and its fit; priors, values and change semantics; the archive's model."""
