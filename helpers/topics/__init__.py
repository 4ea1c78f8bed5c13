"""The support code of each subject the labs teach, one module per subject.

caching, sessions, messaging, analytics, eviction, backups, sharding, security, sizing,
datastructures, memcache_tools, the shop database (dataset, db), the capstone, small widgets.
Notebooks import a module by its subject: `from helpers.topics import eviction as ev`.
"""
