"""Measure real hardware for hwsim\x27s models (`hwsim calibrate ...`)."""
