"""Layer 7: the validated files users write: scenarios, their sections, study and adaptive
scenarios.
"""
