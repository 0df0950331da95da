"""The integration API: ``/api/v1`` (JSON, OpenAPI 3.1) and ``/fhir`` (FHIR R4).

Both call the same services and the same scoping as the web pages; this package only
translates HTTP (tokens, problem details, idempotency, pagination) into service calls.
"""
