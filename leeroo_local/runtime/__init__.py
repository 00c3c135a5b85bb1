"""Serving a request: the Service facade, the runners that pick a backend, the pool of loaded
experts, memory planning and routing. Never downloads or quantizes (see provision/)."""
