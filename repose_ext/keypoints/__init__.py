"""Reading 2D detections of common detectors, converting their joints and following persons over time."""
