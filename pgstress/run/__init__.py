"""Running a ramp: the loop, the one iteration template both modes follow, measuring, faults."""
