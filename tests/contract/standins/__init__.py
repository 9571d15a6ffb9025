"""Stand-ins the contract suite runs against: one module per provider, each exposing ``STANDINS``."""
