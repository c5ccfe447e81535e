"""Layer 6: what travels between the ServerApp and the ClientApps: message names and configs
(:mod:`fedhar.wire.protocol`), the payload codec (:mod:`fedhar.wire.codec`) and the fenced
Flower internals (:mod:`fedhar.wire.flower_compat`).
"""
