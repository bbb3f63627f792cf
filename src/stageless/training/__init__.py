"""Training: the coordinator plans, workers read their shard and train one model together."""
