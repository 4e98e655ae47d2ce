"""Operator extra links: the stopped target's page in the service's own UI, or the account's console
page where the service has no public page per target (``base``: the generic part and the operators'
side; one module per service; docs/links.md says which page each links to, and why)."""
