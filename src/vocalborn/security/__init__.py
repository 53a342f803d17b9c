"""Security of health data: abuse limits, invitations, the access log, export and erasure,
encryption at rest. docs/SECURITY.md describes the threat model."""
