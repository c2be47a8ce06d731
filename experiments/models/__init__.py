"""Fitting and checking the segment and score models on simulated data with known truth
(the models themselves, and scoring, live in :mod:`policies.segments`)."""
