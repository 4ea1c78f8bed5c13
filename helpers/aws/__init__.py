"""The AWS layer: the local AWS endpoint and our ElastiCache control plane on it.

endpoint (start it; the guard that keeps every SDK call local), server (moto in server mode),
client (waiters, Auto Discovery, TLS for API-made caches), catalogue (parameter groups, node types
and engine versions as AWS publishes them), controlplane/ (the ElastiCache API, real engines behind
every resource). Built on the runtime and measure layers only.
"""
