"""A Django application receiving chunkd's post-events, as an application keeping a
model of finished uploads would: it verifies each delivery's signature, creates one
`FinishedUpload` row per post-finish (the Idempotency-Key makes a repeat a no-op), and
can be switched "down" (503 to everything) to test delivery across outages. Run in a
thread by the tests (werkzeug's server around Django's WSGI handler)."""
