"""Local stand-ins for production infrastructure: a KRaft Kafka broker and an S3 server, run with java."""
