"""The runtime layer: real engine processes on loopback, owned by one learner's state directory.

state (the directory, locks, JSON files), engines (binaries, versions, nodes), process (spawn,
readiness, stop a tree, identity), service/services (what the labs start by name, healed when
killed), tls (the lab's own CA), topologies/ (standalone, replicated, cluster, secure; one
registry). Nothing here knows about labs, exercises or AWS.
"""
