"""Input-adaptive inference (Daghero et al. 2022 §4.3, §5.4): a variable-width 1D-CNN with
switchable BatchNorm, the score-margin policy, and its operating modes on an MCU."""
