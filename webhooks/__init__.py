"""The outgoing webhook engine (Standard Webhooks signing, outbox, retries, SSRF guard).

Filled by the outgoing-webhooks issue; it never imports the plugin, Flask or the other engines.
"""
