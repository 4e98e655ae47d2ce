"""What the operators, sensors and notifiers of a service share: its hook, its target parameter, its
connection and its stop options (``base``: the generic part; one module per service)."""
