"""Local stand-ins for the CRMs Flywheel syncs into, like a payment provider's test mode.

They keep state and answer over real HTTP on 127.0.0.1, so the real client libraries can be
pointed at them for demos and tests without an account or a network.
"""
