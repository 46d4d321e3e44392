"""nsqlookupd: the topology directory nsqd nodes register with and consumers query."""
