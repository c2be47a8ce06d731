"""The simulated world (pure numpy, no Ray): clock, subscriber population, organic
behavior and the email-response model with known ground truth.

Not built yet: see the simulation issue.
"""
