"""The Flower ClientApp: each user's simulated MCU, personalizing through the C library
(:mod:`fedhar.ondevice`), on a battery-powered wearable (:mod:`fedhar.wearable`)."""
