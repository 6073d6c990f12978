"""The built-in demo ERP: its own tables, a connector, an event emitter, seed data and a console.

It plays a separate system: the portal reaches it only through ``DemoConnector`` and hears from it
only through the signed event intake (``erp.intake.receive``).
"""
