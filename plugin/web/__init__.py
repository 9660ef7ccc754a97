"""The Flask app: inbound webhook receivers now; the REST API and dashboard join it later."""
