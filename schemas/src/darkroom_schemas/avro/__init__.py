"""Committed Avro schemas (``<event>.v<N>.avsc``) and the schema-id map (``ids.json``)."""
