"""I/O adapters: community sources (files, webhooks, pulls) and, later, CRM adapters.

Nothing here opens the database or imports the plugin; everything maps outside data to the
canonical records of :mod:`connectors.records`.
"""
