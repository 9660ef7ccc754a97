"""CRM adapters: batches of mapped records in, one outcome per record out; CRM state read back.

They never open the database: the plugin decides what to send (change detection), stores the
outcomes and owns the credentials.
"""
