package ingest

// ReadProtocol is readProtocol, for the external tests.
var ReadProtocol = readProtocol
