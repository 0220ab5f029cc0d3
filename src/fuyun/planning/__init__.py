"""What-if capacity planning on an in-memory copy of the fabric.

A growth scenario is run through the real scheduler (filters and weighers), the
real IPAM math (subnet layouts, next-free prefixes and VLANs, growth strategies)
and the real layer-2 table model, against a copy built from a fabric file, a
preset or the live store. Nothing here opens a session: the live store is read
once by the service layer and never written.
"""
