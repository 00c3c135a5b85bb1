"""The universe constructor: which (expert, quantization) pairs fit a budget and complement each
other. greedy is the pure search, routed its routed objective, plan the layer from catalog and
outcomes to a typed plan, report its schema."""
