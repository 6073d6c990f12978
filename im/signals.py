"""Signals of the outbox, in a module of their own so listeners (trust) import nothing else of im."""

from django.dispatch import Signal

# Sent by im.services with ``deliveries=[…]``: the rows of one batch that reached sent or dead, inside
# the transaction that records them (trust appends their audit entries in one go).
deliveries_finished = Signal()
