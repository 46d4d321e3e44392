"""The NSQ tools (nsq_tail, to_nsq, nsq_stat, nsq_to_file, nsq_to_http, nsq_to_nsq, nsq_pubsub)."""
