"""Self-play: generate or draw questions, route and run them, evaluate, store, retrain."""
