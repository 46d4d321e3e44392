"""nsqadmin: the web UI for an NSQ cluster."""
