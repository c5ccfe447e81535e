"""Layer 4: the pipeline (data, folds, pretraining) and the studies built on the layers below:
battery-policy studies and the adaptive-inference study.
"""
